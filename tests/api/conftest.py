"""The FHIR intake app in-process, shared by the intake tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.api.app import create_app
from referral_service.config import Settings
from tests.api_server import service_settings


@pytest.fixture
def settings(hapi_base_url: str) -> Settings:
    """One referring EHR (HAPI) and a task queue no other test uses."""
    return service_settings(hapi_base_url, "intake")


@pytest.fixture
async def api(settings: Settings, temporal_env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process; its lifespan (start-up and shut-down) runs around the test, as under uvicorn."""
    app = create_app(settings, temporal_env.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client
