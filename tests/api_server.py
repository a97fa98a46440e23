"""The real API (uvicorn, in this process, on a free loopback port) and a worker, for tests that talk HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from referral_service.api.app import create_app
from referral_service.api.http_server import server_config
from referral_service.config import Settings
from referral_service.config.auth import AuthSettings
from referral_service.config.sources import SourceSettings
from referral_service.devstack.process import free_port
from referral_service.ehr.client import FhirClient
from referral_service.replay.clock import terminate_when_idle
from referral_service.runners import QuietApiServer
from referral_service.worker import create_worker
from tests.api_driver import Api
from tests.conftest import HAPI_SOURCE_ID

# The test apps' audit trails: in a folder of this run, not in the checkout's `.iop-state` (the dev stack's).
AUDIT_DIR = Path(tempfile.mkdtemp(prefix="iop-test-audit-"))


def service_settings(hapi_base_url: str, queue_prefix: str, *source_ids: str) -> Settings:
    """Referring EHRs (default: one, ``HAPI_SOURCE_ID``), all the HAPI test server, and a task queue no
    other test uses (its audit trail named after it)."""
    task_queue = f"{queue_prefix}-{uuid.uuid4().hex[:8]}"
    return Settings(
        task_queue=task_queue,
        sources=tuple(SourceSettings(id=s, base_url=hapi_base_url) for s in source_ids or (HAPI_SOURCE_ID,)),
        database_url=SecretStr(f"sqlite:///{AUDIT_DIR / task_queue}.sqlite"),
    )


@contextlib.asynccontextmanager
async def running_api(
    temporal_env: WorkflowEnvironment,
    hapi_base_url: str,
    hapi_client: FhirClient,
    *,
    queue_prefix: str,
    auth: AuthSettings | None = None,
    port: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    client: Client | None = None,
) -> AsyncIterator[str]:
    """The API's base URL, served until the block ends (with the server's own limits), with a worker on its own
    task queue; ``auth`` makes it require bearer tokens; ``port`` is for a caller that must know the URL first
    (a sign-in redirect URL); ``overrides`` are other settings (e.g. short ``server`` limits); ``client``
    replaces the environment's Temporal client (e.g. one that counts queries) for the API and the worker."""
    port = port or free_port()
    update = {"auth": auth, "api_port": port, **(overrides or {})}
    settings = service_settings(hapi_base_url, queue_prefix).model_copy(update=update)
    temporal = client or temporal_env.client
    app = create_app(settings, temporal)
    server = QuietApiServer(server_config(app, settings))
    workers = {HAPI_SOURCE_ID: hapi_client}
    async with create_worker(temporal, settings.task_queue, workers, database=app.state.database):
        serving = asyncio.create_task(server.serve())
        deadline = time.monotonic() + 30
        while not server.started:
            assert not serving.done(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start within 30s"
            await asyncio.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await serving


@contextlib.asynccontextmanager
async def driven_api(
    env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient, *, queue_prefix: str
) -> AsyncIterator[Api]:
    """The API (with its worker) driven over HTTP; what the test submitted is terminated afterwards, since a
    referral left waiting once its worker is gone would hold the time-skipping clock for later tests."""
    async with (
        running_api(env, hapi_base_url, hapi_client, queue_prefix=queue_prefix) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=60) as http,
    ):
        api = Api(http)
        yield api
        for key in api.submitted:
            await terminate_when_idle(env.client.get_workflow_handle(key), "test ended")
