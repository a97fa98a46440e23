"""The per-source rate limit holds on every intake route: a subscription delivery (each starts an EHR search)
takes its turn like a pushed referral, a Bundle or the referrer's Task, from one bucket per source, and past the
rate each answers 429 with ``Retry-After``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.config.limits import IntakeLimits
from referral_service.ehr.client import FhirClient
from tests.conftest import HAPI_SOURCE_ID
from tests.oidc_provider import OidcProvider
from tests.referrals import referral_bundle
from tests.security.conftest import bearer, secured_api

pytestmark = pytest.mark.timeout(120)
ONE_A_MINUTE = IntakeLimits(per_source_per_minute=1, burst=1)
ADA = "ada-testpatient-adult-inpatient"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture
async def api(
    provider: OidcProvider, temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> AsyncIterator[str]:
    async with secured_api(provider, temporal_env, hapi_base_url, hapi_client, intake=ONE_A_MINUTE) as url:
        yield url


async def test_subscription_deliveries_take_their_turn_with_every_other_intake_route(
    api: str, provider: OidcProvider
) -> None:
    hospital = bearer(provider, "referring-system", source=HAPI_SOURCE_ID) | FHIR_JSON
    delivery = f"/subscriptions/{HAPI_SOURCE_ID}/ServiceRequest/not-there-{uuid.uuid4().hex[:8]}"
    request = {"resourceType": "ServiceRequest", "id": delivery.rsplit("/", 1)[1]}
    task = {"resourceType": "Task", "status": "requested", "intent": "order", "focus": {"reference": delivery}}
    async with httpx.AsyncClient(base_url=api, timeout=60) as client:
        first = await client.put(delivery, json=request, headers=hospital)
        answers = {
            "subscription": await client.put(delivery, json=request, headers=hospital),
            "push": await client.post("/fhir", json=referral_bundle(ADA), headers=hospital),
            "task": await client.post("/fhir/Task", json=task, headers=hospital),
        }

    assert first.status_code != 429, first.text  # the source's one turn this minute
    assert {route: answer.status_code for route, answer in answers.items()} == dict.fromkeys(answers, 429)
    for answer in answers.values():
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
        assert [i["code"] for i in answer.json()["issue"]] == ["throttled"]
