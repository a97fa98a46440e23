"""FhirClient request shapes and response handling against ``httpx.MockTransport`` (no server).

The behaviour against a real server is proven in ``tests/integration/test_ehr_client.py``; these tests
cover what HAPI does not readily produce: missing bodies, foreign paging links, HTML, broken sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import httpx
import pytest

from referral_service.ehr import (
    FhirClient,
    NotFoundError,
    PermanentError,
    SourceConfig,
    TransientError,
)

BASE = "http://ehr.test/fhir"
FHIR_JSON = {"Content-Type": "application/fhir+json;charset=utf-8"}
PATIENT = {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": "1"}]}

Handler = Callable[[httpx.Request], httpx.Response]


def fhir(status: int, body: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers={**FHIR_JSON, **headers})


def client_with(handler: Handler, *, auth: httpx.Auth | None = None) -> FhirClient:
    return FhirClient(SourceConfig(id="test", base_url=BASE, auth=auth), transport=httpx.MockTransport(handler))


def searchset(ids: list[str], next_url: str | None = None) -> dict[str, Any]:
    entries = [{"resource": {"resourceType": "Patient", "id": i}, "search": {"mode": "match"}} for i in ids]
    links = [{"relation": "next", "url": next_url}] if next_url else []
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries, "link": links}


def test_source_config_validates_the_base_url():
    assert SourceConfig(id="hapi", base_url="http://127.0.0.1:8080/fhir/").base_url == "http://127.0.0.1:8080/fhir"
    for bad in ("/fhir", "ftp://ehr.test/fhir", "ehr.test/fhir", "http://ehr.test/fhir?x=1", "not a url"):
        with pytest.raises(ValueError, match="base URL"):
            SourceConfig(id="bad", base_url=bad)
    with pytest.raises(ValueError, match="timeout"):
        SourceConfig(id="bad", base_url=BASE, timeout_seconds=0)


async def test_create_sends_fhir_headers_and_reads_version_from_etag():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {**PATIENT, "id": "abc", "meta": {"versionId": "1"}}
        return fhir(201, body, ETag='W/"1"', Location=f"{BASE}/Patient/abc/_history/1")

    async with client_with(handler) as client:
        result = await client.create(PATIENT)
    assert (result.created, result.resource_type, result.id, result.version) == (True, "Patient", "abc", "1")
    request = seen[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/Patient")
    assert request.headers["Accept"] == "application/fhir+json"
    assert request.headers["Content-Type"] == "application/fhir+json"
    assert request.headers["Prefer"] == "return=representation"


async def test_conditional_create_match_without_body_is_read_through_location():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(200, headers={"Location": f"{BASE}/Patient/abc/_history/4"})
        return fhir(200, {**PATIENT, "id": "abc", "meta": {"versionId": "4"}})

    async with client_with(handler) as client:
        result = await client.create_if_none_exist(PATIENT, "identifier=urn:test|1")
    assert (result.created, result.id, result.version) == (False, "abc", "4")
    assert result.resource is not None
    assert result.resource["id"] == "abc"
    assert seen[0].headers["If-None-Exist"] == "identifier=urn%3Atest%7C1"
    assert (seen[1].method, seen[1].url.path) == ("GET", "/fhir/Patient/abc/_history/4")


async def test_conditional_update_puts_criteria_in_the_query():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return fhir(201, {**PATIENT, "id": "x1", "meta": {"versionId": "1"}})

    async with client_with(handler) as client:
        result = await client.update_conditional(PATIENT, {"identifier": "urn:test|1"})
    assert (result.created, result.id, result.version) == (True, "x1", "1")
    assert seen[0].method == "PUT"
    assert seen[0].url.path == "/fhir/Patient"
    assert seen[0].url.params["identifier"] == "urn:test|1"


async def test_update_sends_if_match_and_needs_an_id():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return fhir(200, {**PATIENT, "id": "abc", "meta": {"versionId": "4"}}, ETag='W/"4"')

    async with client_with(handler) as client:
        result = await client.update({**PATIENT, "id": "abc"}, if_match_version="3")
        await client.update({**PATIENT, "id": "abc"}, if_match_version='W/"3"')
        await client.update({**PATIENT, "id": "abc"}, if_match_version=None)
        with pytest.raises(ValueError, match="id"):
            await client.update(PATIENT, if_match_version="1")
    assert (result.created, result.version) == (False, "4")
    assert seen[0].headers["If-Match"] == 'W/"3"'
    assert seen[1].headers["If-Match"] == 'W/"3"'
    assert "If-Match" not in seen[2].headers
    assert (seen[0].method, seen[0].url.path) == ("PUT", "/fhir/Patient/abc")


async def test_search_follows_next_links_and_keeps_only_matches():
    seen: list[httpx.Request] = []
    page2 = f"{BASE}?_getpages=abc&_getpagesoffset=2&_count=2"

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "_getpages" in request.url.params:
            bundle = searchset(["c"])
            bundle["entry"].append(
                {"resource": {"resourceType": "Organization", "id": "o"}, "search": {"mode": "include"}}
            )
            return fhir(200, bundle)
        return fhir(200, searchset(["a", "b"], next_url=page2))

    async with client_with(handler) as client:
        found = await client.search("Patient", {"_tag": "urn:t|x", "_lastUpdated": ["ge2026-01-01", "lt2026-02-01"]})
    assert [r["id"] for r in found] == ["a", "b", "c"]
    assert seen[0].url.params.get_list("_lastUpdated") == ["ge2026-01-01", "lt2026-02-01"]
    assert str(seen[1].url) == page2
    assert all(r.headers["Cache-Control"] == "no-cache" for r in seen)


async def test_search_refuses_a_next_link_to_another_host():
    class Bearer(httpx.Auth):
        def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
            request.headers["Authorization"] = "Bearer secret"
            yield request

    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return fhir(200, searchset(["a"], next_url="http://elsewhere.test/fhir?_getpages=x"))

    async with client_with(handler, auth=Bearer()) as client:
        with pytest.raises(PermanentError, match="outside"):
            await client.search("Patient", {"name": "x"})
    assert hosts == ["ehr.test"]


async def test_search_stops_on_a_repeated_next_link():
    def handler(request: httpx.Request) -> httpx.Response:
        return fhir(200, searchset(["a"], next_url=f"{BASE}?_getpages=loop"))

    async with client_with(handler) as client:
        with pytest.raises(PermanentError, match="repeated"):
            await client.search("Patient", {})


async def test_html_success_body_is_a_clear_error():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>login</html>", headers={"Content-Type": "text/html"})

    async with client_with(handler) as client:
        with pytest.raises(PermanentError, match=r"non-FHIR response body \(text/html\)"):
            await client.read("Patient", "abc")


async def test_html_gateway_error_is_transient():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(504, text="<html>Gateway Timeout</html>", headers={"Content-Type": "text/html"})

    async with client_with(handler) as client:
        with pytest.raises(TransientError) as caught:
            await client.capabilities()
    assert caught.value.status == 504


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
async def test_transport_failures_are_transient(failure):
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    async with client_with(handler) as client:
        with pytest.raises(TransientError) as caught:
            await client.search("Patient", {"identifier": "urn:mrn|12345"})
    assert caught.value.status is None
    assert caught.value.retryable
    assert "12345" not in str(caught.value)
    assert type(failure).__name__ in str(caught.value)


async def test_not_found():
    def handler(request: httpx.Request) -> httpx.Response:
        issue = {
            "severity": "error",
            "code": "processing",
            "diagnostics": "HAPI-2001: Resource Patient/x is not known",
        }
        return fhir(404, {"resourceType": "OperationOutcome", "issue": [issue]})

    async with client_with(handler) as client:
        with pytest.raises(NotFoundError):
            await client.read("Patient", "x")


async def test_ids_and_types_are_checked_before_any_request():
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    async with client_with(handler) as client:
        with pytest.raises(ValueError, match="id"):
            await client.read("Patient", "../metadata")
        with pytest.raises(ValueError, match="type"):
            await client.read("patient?x=1", "abc")
        with pytest.raises(ValueError, match="criteria"):
            await client.create_if_none_exist(PATIENT, "")
        with pytest.raises(ValueError, match="transaction"):
            await client.transaction({"resourceType": "Bundle", "type": "searchset"})


async def test_transaction_posts_to_the_base():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return fhir(200, {"resourceType": "Bundle", "type": "transaction-response", "entry": []})

    async with client_with(handler) as client:
        reply = await client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": []})
    assert reply["type"] == "transaction-response"
    assert (seen[0].method, str(seen[0].url)) == ("POST", BASE)
