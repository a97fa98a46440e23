"""Liveness and readiness as an orchestrator sees them, against the real Temporal dev server and HAPI."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from temporalio.testing import WorkflowEnvironment

from referral_service.api.app import create_app
from referral_service.config import Settings
from referral_service.config.sources import EhrCallLimits, SourceSettings
from referral_service.devstack.process import free_port
from tests.api_server import service_settings
from tests.conftest import HAPI_SOURCE_ID
from tests.smart_token_server import TokenServer, serving, smart_auth, write_pem


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


async def test_an_ehr_refusing_our_credentials_shows_as_such(
    hapi_base_url: str, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Writes to an EHR that refuses the service's credentials wait, retrying, until someone fixes them: readiness
    says so, for a key the authorization server does not know and for tokens the FHIR server will not take."""
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with serving(TokenServer()) as unknown_key, serving(TokenServer(honour_tokens=False)) as no_tokens:
        settings = service_settings(hapi_base_url, "health")
        sources = (
            SourceSettings.model_validate(
                {
                    "id": "wrong-key",
                    "base_url": unknown_key.fhir_base,
                    "auth": smart_auth(tmp_path, private_key_file=str(write_pem(tmp_path, stranger, "stranger.pem"))),
                }
            ),
            SourceSettings.model_validate(
                {"id": "tokens-refused", "base_url": no_tokens.fhir_base, "auth": smart_auth(tmp_path)}
            ),
        )
        async with _client(settings.model_copy(update={"sources": (*settings.sources, *sources)}), temporal_env) as api:
            ready = await api.get("/readyz")

    assert ready.status_code == 503, ready.text
    checks = ready.json()["checks"]
    assert checks[f"ehr:{HAPI_SOURCE_ID}"] == "ok"
    assert checks["ehr:wrong-key"].startswith("credentials refused (HTTP 400: token request failed: invalid_client")
    assert checks["ehr:tokens-refused"].startswith("credentials refused (HTTP 401"), checks


async def test_readiness_does_not_queue_behind_a_burst_of_ehr_writes(
    hapi_base_url: str, temporal_env: WorkflowEnvironment
) -> None:
    """Every EHR call slot taken (a burst's writes in flight): the probe still reaches HAPI and says ready,
    rather than waiting for a slot and answering "unreachable" to an orchestrator that then pulls the process."""
    settings = service_settings(hapi_base_url, "health")
    [source] = settings.sources
    busy = source.model_copy(update={"limits": EhrCallLimits(max_in_flight=1, max_wait_seconds=1)})
    settings = settings.model_copy(update={"sources": (busy,)})

    async with _client(settings, temporal_env) as api, busy.throttle.call():  # the one slot, held
        ready = await api.get("/readyz")

    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"][f"ehr:{HAPI_SOURCE_ID}"] == "ok"
