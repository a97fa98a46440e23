"""``/fhir/metadata`` names the configured public base URL, whatever Host a request claims (a forged Host
must not end up in what the endpoint says about itself). Real API (uvicorn) against the Temporal dev server."""

from __future__ import annotations

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.api.app import create_app
from referral_service.ehr.client import FhirClient
from tests.api_server import service_settings
from tests.security import surfaces
from tests.security.surfaces import Stack

pytestmark = pytest.mark.timeout(300)
provider, stack = surfaces.provider, surfaces.stack  # the module's fixtures


async def test_a_forged_host_is_not_echoed(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        answer = await http.get("/fhir/metadata", headers={"Host": "evil.example"})
    assert answer.status_code == 200, answer.text[:300]
    assert "evil.example" not in answer.text
    # The sign-in's public base URL is the API's (no separate setting given).
    assert answer.json()["implementation"]["url"] == f"{stack.url}/fhir"


async def test_the_configured_public_base_url_is_named(
    temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> None:
    settings = service_settings(hapi_base_url, "metadata").model_copy(
        update={"public_base_url": "https://iop.example-health.org/"}
    )
    app = create_app(settings, temporal_env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://attacker.example") as http:
        answer = await http.get("/fhir/metadata")
    assert answer.status_code == 200
    assert answer.json()["implementation"]["url"] == "https://iop.example-health.org/fhir"
