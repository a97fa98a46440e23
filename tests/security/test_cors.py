"""CORS admits the Temporal UI's origin to the codec server alone: no other route answers a cross-origin
script, not even the UI's, so a script there can read no dashboard page (nor the CSRF token in it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.config import Settings
from referral_service.ehr.client import FhirClient
from tests.oidc_provider import OidcProvider
from tests.security.conftest import bearer, secured_api

pytestmark = pytest.mark.timeout(120)
UI_ORIGIN = Settings().temporal_ui_url  # the UI's origin as the API is configured here (the default)
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials")


@pytest.fixture(scope="module")
async def api(
    provider: OidcProvider, temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        secured_api(provider, temporal_env, hapi_base_url, hapi_client) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        yield client


def _preflight(method: str = "POST") -> dict[str, str]:
    return {
        "Origin": UI_ORIGIN,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type",
    }


async def test_the_codec_server_alone_answers_the_temporal_uis_scripts(
    api: httpx.AsyncClient, provider: OidcProvider
) -> None:
    codec = await api.options("/codec/decode", headers=_preflight())
    stranger = await api.options("/codec/decode", headers=_preflight() | {"Origin": "https://evil.example"})
    others: dict[str, list[str]] = {}
    for path in ("/inbox", "/caseload", "/api/referrals", "/api/audit", "/fhir/Task/x"):
        preflight = await api.options(path, headers=_preflight("GET"))
        read = await api.get(path, headers=bearer(provider, "program-admin") | {"Origin": UI_ORIGIN})
        assert read.status_code in (200, 404), read.text  # served, but to no cross-origin script
        others[path] = [h for response in (preflight, read) for h in CORS_HEADERS if h in response.headers]

    assert codec.status_code == 200, codec.text
    assert codec.headers["access-control-allow-origin"] == UI_ORIGIN
    assert codec.headers["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in stranger.headers
    assert others == {path: [] for path in others}
