"""Liveness and readiness as an orchestrator sees them, against the real Temporal dev server and HAPI."""

from __future__ import annotations

import time

import httpx
from temporalio.testing import WorkflowEnvironment

from referral_service.api.app import create_app
from referral_service.config import Settings, SourceSettings
from referral_service.devstack.process import free_port
from tests.api_server import service_settings
from tests.conftest import HAPI_SOURCE_ID


def _client(settings: Settings, temporal_env: WorkflowEnvironment) -> httpx.AsyncClient:
    app = create_app(settings, temporal_env.client)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_ready_when_temporal_and_every_ehr_answer(hapi_base_url: str, temporal_env: WorkflowEnvironment) -> None:
    async with _client(service_settings(hapi_base_url, "health"), temporal_env) as api:
        live = await api.get("/healthz")
        ready = await api.get("/readyz")

    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {"temporal": "ok", f"ehr:{HAPI_SOURCE_ID}": "ok"}}


async def test_not_ready_names_the_unreachable_ehr_and_answers_within_seconds(
    hapi_base_url: str, temporal_env: WorkflowEnvironment
) -> None:
    """An EHR nobody listens for makes the service not ready, says which one, and does not hang the probe."""
    down = SourceSettings(id="down-ehr", base_url=f"http://127.0.0.1:{free_port()}/fhir")
    settings = service_settings(hapi_base_url, "health")
    settings = settings.model_copy(update={"sources": (*settings.sources, down)})

    async with _client(settings, temporal_env) as api:
        started = time.monotonic()
        ready = await api.get("/readyz")
        took = time.monotonic() - started

    assert ready.status_code == 503, ready.text
    checks = ready.json()["checks"]
    assert checks["temporal"] == "ok"
    assert checks[f"ehr:{HAPI_SOURCE_ID}"] == "ok"
    assert checks["ehr:down-ehr"].startswith("unreachable"), checks
    assert "ConnectError" in checks["ehr:down-ehr"], checks
    assert took < 10, f"readiness probe took {took:.1f}s"
