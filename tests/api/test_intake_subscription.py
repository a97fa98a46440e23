"""Intake by subscription: a real R4 rest-hook Subscription on the HAPI test server delivers a new
ServiceRequest to the running API (uvicorn on a loopback port), which takes the referral in; revoking it in
HAPI cancels the referral. Temporal is the real dev server, with a real worker."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.domain.lifecycle import Phase
from referral_service.domain.referral import Identifier, referral_key
from referral_service.ehr.client import FhirClient
from tests.api_server import running_api
from tests.conftest import HAPI_SOURCE_ID
from tests.polling import eventually
from tests.referrals import referral_bundle
from tests.workflows.stories import in_phase, referral_phase, written

pytestmark = pytest.mark.timeout(300)


async def test_a_rest_hook_subscription_delivers_a_referral_and_its_revocation(
    temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> None:
    client = temporal_env.client
    bundle = referral_bundle("ada-testpatient-adult-inpatient")
    [request] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
    placer = Identifier(**request["identifier"][0])
    key = referral_key(HAPI_SOURCE_ID, placer)

    async with running_api(temporal_env, hapi_base_url, hapi_client, queue_prefix="subscription") as api_url:
        subscription = await hapi_client.create(
            {
                "resourceType": "Subscription",
                "status": "requested",
                "reason": "IOP referrals (test)",
                "criteria": "ServiceRequest?status=active,revoked",
                "channel": {
                    "type": "rest-hook",
                    "endpoint": f"{api_url}/subscriptions/{HAPI_SOURCE_ID}",
                    "payload": "application/fhir+json",
                },
            }
        )
        try:
            await eventually(
                lambda: _active(hapi_client, subscription.id), "HAPI to activate the Subscription", patience_s=120
            )
            await hapi_client.transaction(bundle)
            await eventually(lambda: referral_phase(client, key), "the delivered referral's workflow", patience_s=120)
            [task] = await eventually(
                lambda: written(hapi_client, "Task", f"{key}/task"), "the referral's Task", patience_s=120
            )
            assert task["status"] == "received"

            [stored] = await hapi_client.search("ServiceRequest", {"identifier": f"{placer.system}|{placer.value}"})
            await hapi_client.update({**stored, "status": "revoked"}, if_match_version=stored["meta"]["versionId"])
            await eventually(
                lambda: in_phase(client, key, Phase.CANCELLED), "the revoked referral to be cancelled", patience_s=120
            )
        finally:  # switched off, so later tests' ServiceRequests are not delivered to a stopped API
            current = await hapi_client.read("Subscription", subscription.id)
            await hapi_client.update({**current, "status": "off"}, if_match_version=current["meta"]["versionId"])
    assert (await client.count_workflows(f"WorkflowId = '{key}'")).count == 1


async def _active(hapi: FhirClient, subscription_id: str) -> bool:
    return (await hapi.read("Subscription", subscription_id)).get("status") == "active"
