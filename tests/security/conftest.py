"""The real API (uvicorn on a loopback port, auth on, a worker) signing users in through a real OpenID provider
on loopback (``tests/oidc_provider.py``), whose tokens it verifies by the provider's JWKS URL, as deployed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.devstack.process import free_port
from referral_service.ehr.client import FhirClient
from tests.api_server import running_api
from tests.oidc_provider import OidcProvider, serving, sign_in_settings


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with serving(OidcProvider()) as running:
        yield running


@contextlib.asynccontextmanager
async def secured_api(
    provider: OidcProvider,
    temporal_env: WorkflowEnvironment,
    hapi_base_url: str,
    hapi_client: FhirClient,
    **overrides: Any,
) -> AsyncIterator[str]:
    """The API's base URL, tokens and dashboard sign-in from ``provider``; ``overrides`` are settings."""
    port = free_port()
    auth = sign_in_settings(provider, f"http://127.0.0.1:{port}")
    async with running_api(
        temporal_env, hapi_base_url, hapi_client, queue_prefix="security", auth=auth, port=port, overrides=overrides
    ) as url:
        yield url


def bearer(provider: OidcProvider, *roles: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {provider.access_token(*roles, **claims)}"}
