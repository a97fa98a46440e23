"""Slow and greedy clients against the API's own server limits (``Settings.server``), set short here: headers
that trickle or never come, a body that stalls, an idle kept-alive connection, oversized headers, and more
connections than the server takes at once. Raw sockets; every wait is bounded by the limit plus a margin."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.config.limits import ServerLimits
from referral_service.ehr.client import FhirClient
from tests.oidc_provider import OidcProvider
from tests.security.conftest import bearer, secured_api
from tests.security.raw_http import closed_by_server, connection, head, read_answer

pytestmark = pytest.mark.timeout(120)
SHORT = ServerLimits(header_timeout_seconds=1, body_timeout_seconds=1, keep_alive_seconds=1, max_header_bytes=4096)
MARGIN = 3.0  # seconds past a limit before the test calls it not enforced


@pytest.fixture(scope="module")
async def api(
    provider: OidcProvider, temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> AsyncIterator[str]:
    async with secured_api(provider, temporal_env, hapi_base_url, hapi_client, server=SHORT) as url:
        yield url


async def test_headers_that_trickle_are_cut_off_with_408(api: str) -> None:
    async with connection(api) as (reader, writer):
        writer.write(b"GET /api/referrals HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and then nothing
        await writer.drain()
        answer = await read_answer(reader, SHORT.header_timeout_seconds + MARGIN)
        closed = await closed_by_server(reader, MARGIN)

    assert answer.status == 408
    assert closed


async def test_a_connection_that_says_nothing_is_closed(api: str) -> None:
    async with connection(api) as (reader, _):
        assert await closed_by_server(reader, SHORT.header_timeout_seconds + MARGIN)


@pytest.mark.parametrize(
    ("path", "role"),
    [("/api/referrals/hapi-test~nobody/decision", "intake-coordinator"), ("/fhir", "referring-system")],
)
async def test_a_body_that_stalls_is_cut_off_with_408(api: str, provider: OidcProvider, path: str, role: str) -> None:
    headers = bearer(provider, role, source="hapi-test") | {"Content-Type": "application/json", "Content-Length": "100"}
    async with connection(api) as (reader, writer):
        writer.write(head("POST", path, headers) + b'{"decision": ')  # 13 of 100 bytes
        await writer.drain()
        answer = await read_answer(reader, SHORT.body_timeout_seconds + MARGIN)
        closed = await closed_by_server(reader, MARGIN)

    assert answer.status == 408, answer.body
    if path == "/fhir":
        assert [i["code"] for i in json.loads(answer.body)["issue"]] == ["timeout"]
    assert closed


async def test_an_idle_kept_alive_connection_is_closed(api: str) -> None:
    async with connection(api) as (reader, writer):
        writer.write(head("GET", "/healthz", {}))
        await writer.drain()
        assert (await read_answer(reader, MARGIN)).status == 200
        assert await closed_by_server(reader, SHORT.keep_alive_seconds + MARGIN - 1)


async def test_headers_over_the_limit_are_refused(api: str) -> None:
    async with connection(api) as (reader, writer):
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"x" * 5000)  # not ended yet
        await writer.drain()
        answer = await read_answer(reader, MARGIN)

    assert answer.status == 400


async def test_connections_past_the_concurrency_limit_get_503(
    provider: OidcProvider, temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> None:
    limits = ServerLimits(max_concurrency=3, header_timeout_seconds=30)
    async with (
        secured_api(provider, temporal_env, hapi_base_url, hapi_client, server=limits) as api,
        contextlib.AsyncExitStack() as idle,
    ):
        for _ in range(2):  # open and silent, as a slow-loris client holds them
            await idle.enter_async_context(connection(api))
        statuses = []
        for _ in range(20):  # until the server has taken both idle connections in (bounded)
            async with connection(api) as (reader, writer):
                writer.write(head("GET", "/healthz", {}))
                await writer.drain()
                statuses.append((await read_answer(reader, MARGIN)).status)
            if statuses[-1] == 503:
                break
            await asyncio.sleep(0.05)

    assert statuses[-1] == 503, statuses
