"""Who is calling is decided from the headers, before any of the body is read: a caller without an acceptable
token (or dashboard session) is answered while its body is still on the way, and a body over its route's limit
is refused by its declared length, or as soon as the count passes the limit, never read whole."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from structlog.testing import capture_logs
from temporalio.testing import WorkflowEnvironment

from referral_service.ehr.client import FhirClient
from tests.api.test_signin import csrf_token, sign_in
from tests.oidc_provider import CASE_MANAGER, OidcProvider
from tests.security.conftest import bearer, secured_api
from tests.security.raw_http import closed_by_server, connection, head, read_answer

pytestmark = pytest.mark.timeout(120)
HUGE = 16_000_000  # declared, never sent: the server must answer after the first chunk
CHUNK = b"x" * 65_536
ANSWER_WITHIN = 5.0
DECISION = "/api/referrals/hapi-test~nobody/decision"
STREAMED = 512 * len(CHUNK)  # 32 MB offered, chunked; more than the sockets between client and server hold


@pytest.fixture(scope="module")
async def api(
    provider: OidcProvider, temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> AsyncIterator[str]:
    async with secured_api(provider, temporal_env, hapi_base_url, hapi_client) as url:
        yield url


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/referrals/hapi-test~nobody/decision", "application/json"),
        ("/codec/decode", "application/json"),
        ("/referrals/hapi-test~nobody/cancel", "application/x-www-form-urlencoded"),
    ],
)
async def test_a_body_without_credentials_is_refused_before_it_is_sent(api: str, path: str, content_type: str) -> None:
    async with connection(api) as (reader, writer):
        writer.write(head("POST", path, {"Content-Type": content_type, "Content-Length": str(HUGE)}) + CHUNK)
        await writer.drain()
        answer = await read_answer(reader, ANSWER_WITHIN)  # 64 kB of 16 MB sent
        closed = await closed_by_server(reader, ANSWER_WITHIN)

    if path.startswith("/referrals/"):  # a dashboard form: the browser is sent to sign in
        assert (answer.status, answer.headers["location"]) == (303, "/auth/login")
    else:
        assert answer.status == 401, answer.body
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert closed, "the connection stays open to drain a body the server will never use"


async def test_malformed_json_without_a_token_is_401_not_a_parse_error(api: str) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        decision = await client.post("/api/referrals/hapi-test~nobody/decision", content=b"{")
        codec = await client.post("/codec/decode", content=b"{", headers={"Content-Type": "application/json"})

    assert [decision.status_code, codec.status_code] == [401, 401], (decision.text, codec.text)
    assert decision.json()["detail"].startswith("a bearer token is required")


@pytest.mark.parametrize(
    ("role", "path", "declared"),
    [
        ("intake-coordinator", "/api/referrals/hapi-test~nobody/decision", 65_537),
        ("program-admin", "/codec/decode", 524_289),
        ("referring-system", "/subscriptions/hapi-test/ServiceRequest/sr-1", 1_000_001),
    ],
)
async def test_a_declared_length_over_the_routes_limit_is_413_before_the_body_is_sent(
    api: str, provider: OidcProvider, role: str, path: str, declared: int
) -> None:
    headers = bearer(provider, role, source="hapi-test") | {"Content-Type": "application/json"}
    verb = "PUT" if path.startswith("/subscriptions/") else "POST"
    async with connection(api) as (reader, writer):
        writer.write(head(verb, path, headers | {"Content-Length": str(declared)}))
        await writer.drain()
        answer = await read_answer(reader, ANSWER_WITHIN)  # not a byte of the body sent

    assert answer.status == 413, answer.body
    assert json.loads(answer.body)["detail"] == f"the body is larger than {declared - 1} bytes"


async def test_a_chunked_body_is_counted_as_it_streams_and_refused_past_the_limit(
    api: str, provider: OidcProvider
) -> None:
    headers = bearer(provider, "intake-coordinator") | {"Content-Type": "application/json"}
    sent: list[int] = []

    async def body(size: int) -> AsyncIterator[bytes]:
        yield b'{"decision": "waitlist", "reason": "'
        for _ in range(size // len(CHUNK)):
            sent.append(len(CHUNK))
            yield CHUNK
        yield b'"}'

    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        small = await client.post(DECISION, content=body(0), headers=headers)
        with capture_logs() as logs:
            try:
                large: int | None = (await client.post(DECISION, content=body(STREAMED), headers=headers)).status_code
            except httpx.TransportError:  # the answer can be lost to the reset of a connection closed mid-body
                large = None

    assert small.status_code == 404, small.text  # let in: the referral just does not exist
    assert large in (413, None)
    assert sum(sent) < STREAMED, "the whole body was taken in"
    assert [e["status"] for e in logs if e["event"] == "audit"] == [413]  # what the server answered


async def test_a_signed_in_form_is_held_to_the_limit_before_its_csrf_token_is_looked_for(
    api: str, provider: OidcProvider
) -> None:
    provider.user = CASE_MANAGER  # may cancel: only the size and the CSRF token are in question
    async with httpx.AsyncClient(base_url=api, timeout=30, follow_redirects=False) as browser:
        assert (await sign_in(browser)).status_code == 303
        token = await csrf_token(browser)
        cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
        form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
        async with connection(api) as (reader, writer):
            body = f"csrf_token={token}&reason=duplicate+referral&padding=".encode() + b"x" * 1_000_000
            writer.write(head("POST", "/referrals/hapi-test~nobody/cancel", form | {"Content-Length": str(len(body))}))
            await writer.drain()
            answer = await read_answer(reader, ANSWER_WITHIN)  # the headers alone sent

    assert answer.status == 413, answer.body
