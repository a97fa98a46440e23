"""The real API with auth on, signing in through the loopback OpenID provider, for the surface probes.

Each probe module imports ``provider`` and ``stack`` (module-scoped fixtures): uvicorn on a free loopback port,
a worker on its own task queue, the Temporal dev server and the HAPI test server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from referral_service.devstack.process import free_port
from referral_service.domain.referral import Identifier, referral_key
from referral_service.ehr.client import FhirClient
from referral_service.store.database import sqlite_url
from tests.api_server import running_api
from tests.conftest import HAPI_SOURCE_ID
from tests.oidc_provider import OidcProvider, serving, sign_in_settings
from tests.referrals import referral_bundle

ADA = "ada-testpatient-adult-inpatient"
STAFF_ROLES = ("intake-coordinator", "clinician", "case-manager", "program-admin")
FHIR_JSON = {"Content-Type": "application/fhir+json"}


@dataclass
class Stack:
    url: str
    provider: OidcProvider
    database: Path  # the service database (SQLite): audit trail, read model, sessions

    def bearer(self, *roles: str, **claims: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.provider.access_token(*roles, **claims)}"}

    async def submit(self, bundle_name: str = ADA) -> str:
        """A referral from the hospital's referring system (its own token); the referral key."""
        bundle = referral_bundle(bundle_name)
        [request] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
        headers = FHIR_JSON | self.bearer("referring-system", source=HAPI_SOURCE_ID)
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as hospital:
            response = await hospital.post("/fhir", json=bundle, headers=headers)
        assert response.status_code == 201, response.text
        placer = request["identifier"][0]
        return referral_key(HAPI_SOURCE_ID, Identifier(system=placer["system"], value=placer["value"]))


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with serving(OidcProvider()) as running:
        yield running


@pytest.fixture(scope="module")
async def stack(
    provider: OidcProvider,
    temporal_env: WorkflowEnvironment,
    hapi_base_url: str,
    hapi_client: FhirClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    auth = sign_in_settings(provider, url)
    database = tmp_path_factory.mktemp("surfaces") / "service.sqlite"
    overrides = {"database_url": SecretStr(sqlite_url(database))}
    async with running_api(
        temporal_env, hapi_base_url, hapi_client, queue_prefix="surfaces", auth=auth, port=port, overrides=overrides
    ):
        yield Stack(url, provider, database)
