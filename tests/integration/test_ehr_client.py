"""FhirClient against a real HAPI FHIR R4 server (request validation on, in-memory H2).

Each test writes under its own identifier system (a fresh ``urn:uuid:``), so tests never see each
other's resources and can run in any order against one server.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from typing import Any

import pytest

from referral_service.ehr import (
    ConflictError,
    FhirClient,
    NotFoundError,
    SourceConfig,
    TransientError,
    ValidationError,
)
from referral_service.ehr.client import FhirExchange

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(hapi_base_url):
    async with FhirClient(SourceConfig(id="hapi-test", base_url=hapi_base_url, timeout_seconds=60)) as fhir:
        yield fhir


@pytest.fixture
def system() -> str:
    """An identifier system no other test uses."""
    return f"urn:uuid:{uuid.uuid4()}"


def patient(system: str, value: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": system, "value": value}], **fields}


async def test_capabilities_is_an_r4_capability_statement(client):
    statement = await client.capabilities()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"].startswith("4.0")


async def test_create_then_read(client, system):
    created = await client.create(patient(system, "1", gender="female"))
    assert created.created is True
    assert created.version == "1"
    assert created.resource is not None
    assert created.resource["identifier"][0]["system"] == system
    read = await client.read("Patient", created.id)
    assert read["id"] == created.id
    assert read["gender"] == "female"


async def test_conditional_create_twice_makes_one_resource(client, system):
    criteria = f"identifier={system}|mrn-1"
    first = await client.create_if_none_exist(patient(system, "mrn-1"), criteria)
    second = await client.create_if_none_exist(patient(system, "mrn-1"), criteria)
    assert first.created is True
    assert second.created is False
    assert second.id == first.id
    assert second.version == "1"
    assert second.resource is not None
    assert second.resource["id"] == first.id
    found = await client.search("Patient", {"identifier": f"{system}|mrn-1"})
    assert [r["id"] for r in found] == [first.id]


async def test_concurrent_conditional_creates_make_one_resource_after_retrying_conflicts(client, system):
    """Identical concurrent conditional creates: losers get a ConflictError; a retry finds the winner."""
    criteria = {"identifier": f"{system}|race"}

    async def create_retrying_conflicts() -> tuple[str, int]:
        conflicts = 0
        while True:
            try:
                result = await client.create_if_none_exist(patient(system, "race"), criteria)
            except ConflictError:
                conflicts += 1
                assert conflicts < 5
                await asyncio.sleep(0.05)
            else:
                return result.id, conflicts

    outcomes = await asyncio.gather(*(create_retrying_conflicts() for _ in range(5)))
    assert len({resource_id for resource_id, _ in outcomes}) == 1
    assert len(await client.search("Patient", criteria)) == 1


async def test_conditional_create_with_several_matches_is_a_conflict(client, system):
    await client.create(patient(system, "twin"))
    await client.create(patient(system, "twin"))
    with pytest.raises(ConflictError) as caught:
        await client.create_if_none_exist(patient(system, "twin"), f"identifier={system}|twin")
    assert caught.value.status == 412


async def test_stale_if_match_is_a_conflict(client, system):
    v1 = await client.create(patient(system, "v", gender="male"))
    assert v1.resource is not None
    v2 = await client.update({**v1.resource, "gender": "female"}, if_match_version=v1.version)
    assert (v2.created, v2.id, v2.version) == (False, v1.id, "2")
    with pytest.raises(ConflictError) as caught:
        await client.update({**v1.resource, "gender": "other"}, if_match_version=v1.version)
    assert caught.value.status in (409, 412)
    assert caught.value.retryable
    assert (await client.read("Patient", v1.id))["gender"] == "female"


async def test_unchanged_update_makes_no_new_version(client, system):
    v1 = await client.create(patient(system, "same", gender="male"))
    assert v1.resource is not None
    again = await client.update(v1.resource, if_match_version=v1.version)
    assert (again.created, again.id, again.version) == (False, v1.id, "1")


async def test_invalid_resource_is_a_validation_error_with_hapi_issues(client, system):
    with pytest.raises(ValidationError) as caught:
        await client.create(patient(system, "bad", gender="banana"))
    error = caught.value
    assert error.status == 422
    assert not error.retryable
    assert error.issues
    assert any(text.startswith("HAPI-") or "banana" in text for text in error.diagnostics), error.diagnostics
    assert "banana" not in str(error)


async def test_paging_returns_every_match(client, system):
    created = await asyncio.gather(*(client.create(patient(system, f"p{i:02d}")) for i in range(25)))
    pages = [bundle async for bundle in client.search_pages("Patient", {"identifier": f"{system}|", "_count": "10"})]
    assert len(pages) >= 3
    assert all(len(page.get("entry", [])) <= 10 for page in pages)
    found = await client.search("Patient", {"identifier": f"{system}|", "_count": "10"})
    assert len(found) == 25
    assert {r["id"] for r in found} == {r.id for r in created}


async def test_conditional_update_creates_then_updates(client, system):
    criteria = f"identifier={system}|cu"
    first = await client.update_conditional(patient(system, "cu", gender="male"), criteria)
    assert (first.created, first.version) == (True, "1")
    second = await client.update_conditional(patient(system, "cu", gender="female"), criteria)
    assert (second.created, second.id, second.version) == (False, first.id, "2")
    assert (await client.read("Patient", first.id))["gender"] == "female"


async def test_transaction_resolves_urn_uuid_references(client, system):
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "intake screening score"},
        "subject": {"reference": patient_url},
        "identifier": [{"system": system, "value": "obs-1"}],
    }

    def bundle() -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": patient_url,
                    "resource": patient(system, "tx"),
                    "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={system}|tx"},
                },
                {
                    "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                    "resource": observation,
                    "request": {"method": "PUT", "url": f"Observation?identifier={system}|obs-1"},
                },
            ],
        }

    reply = await client.transaction(bundle())
    assert reply["type"] == "transaction-response"
    statuses = [entry["response"]["status"] for entry in reply["entry"]]
    assert [s.split()[0] for s in statuses] == ["201", "201"]
    patient_id = reply["entry"][0]["response"]["location"].split("/")[1]
    observation_id = reply["entry"][1]["response"]["location"].split("/")[1]
    stored = await client.read("Observation", observation_id)
    assert stored["subject"]["reference"] == f"Patient/{patient_id}"

    again = await client.transaction(bundle())
    assert [e["response"]["status"].split()[0] for e in again["entry"]] == ["200", "200"]
    assert again["entry"][0]["response"]["location"].split("/")[1] == patient_id
    assert len(await client.search("Patient", {"identifier": f"{system}|tx"})) == 1


async def test_read_of_a_missing_id_is_not_found(client):
    with pytest.raises(NotFoundError) as caught:
        await client.read("Patient", f"missing-{uuid.uuid4().hex}")
    assert caught.value.status == 404
    assert not caught.value.retryable


async def test_unreachable_server_is_transient_and_quick():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = SourceConfig(id="closed", base_url=f"http://127.0.0.1:{port}/fhir", timeout_seconds=5)
    started = time.monotonic()
    async with FhirClient(source) as closed:
        with pytest.raises(TransientError) as caught:
            await closed.read("Patient", "abc")
    assert time.monotonic() - started < 2
    assert caught.value.status is None
    assert caught.value.retryable


async def test_an_observer_sees_each_exchange_with_ids_and_versions_but_no_bodies(hapi_base_url, system):
    seen: list[FhirExchange] = []
    source = SourceConfig(id="hapi-test", base_url=hapi_base_url, timeout_seconds=60)
    async with FhirClient(source, observer=seen.append) as observed:
        first = await observed.update_conditional(patient(system, "seen", gender="other"), f"identifier={system}|seen")
        await observed.update_conditional(patient(system, "seen", gender="female"), f"identifier={system}|seen")
        await observed.search("Patient", {"identifier": f"{system}|seen"})
        with pytest.raises(NotFoundError):
            await observed.read("Patient", f"missing-{uuid.uuid4().hex}")

    criteria = f"Patient?identifier={system}|seen"
    assert [(x.method, x.url, x.status, x.resource, x.version) for x in seen] == [
        ("PUT", criteria, 201, f"Patient/{first.id}", "1"),
        ("PUT", criteria, 200, f"Patient/{first.id}", "2"),
        ("GET", criteria, 200, None, None),
        ("GET", seen[3].url, 404, None, None),
    ]
    assert "female" not in repr(seen)
