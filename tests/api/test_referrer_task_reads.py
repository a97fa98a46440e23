"""The referrer polls ``GET /fhir/Task/{id}`` to learn the outcome, and resends its referral to find its Task: for
a declined, a cancelled and a never-attended discharged referral both answer 200 with the status, business status
and status reason the EHR's copy of the Task holds. Real API over HTTP, a real worker on the Temporal dev server,
the EHR's Task read back from HAPI."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.ehr.client import FhirClient
from tests.api_driver import ADA
from tests.api_server import driven_api
from tests.program_day import program_today
from tests.referrals import referral_bundle
from tests.workflows.stories import written

pytestmark = pytest.mark.timeout(300)
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def _told(task: dict[str, Any]) -> tuple[str, str, str | None]:
    return task["status"], task["businessStatus"]["coding"][0]["code"], task.get("statusReason", {}).get("text")


@pytest.mark.parametrize(
    ("ending", "expected"),
    [
        ("decline", ("rejected", "declined", "no_capacity")),
        ("cancel", ("cancelled", "cancellation-confirmed", "patient moved out of state")),
        ("discharge", ("cancelled", "unattended", "discharged before any attended session (dropped_out)")),
    ],
)
async def test_the_task_read_and_the_resubmission_answer_say_how_the_referral_ended(
    ending: str,
    expected: tuple[str, str, str | None],
    temporal_env: WorkflowEnvironment,
    hapi_base_url: str,
    hapi_client: FhirClient,
) -> None:
    today = program_today()  # the program's day (New York), not UTC's
    bundle = referral_bundle(ADA, discharged_on=today - timedelta(days=2))
    async with driven_api(temporal_env, hapi_base_url, hapi_client, queue_prefix="task-reads") as api:
        created = await api.http.post("/fhir", content=json.dumps(bundle), headers=FHIR_JSON)
        assert created.status_code == 201, created.text
        key = created.json()["id"]
        api.submitted.append(key)
        await api.snapshot_until(key, lambda s: s["phase"] == "screening", "screening")
        if ending == "decline":
            decision = {"decision": "decline", "decline_reason": "no_capacity"}
            assert (await api.http.post(f"/api/referrals/{key}/decision", json=decision)).status_code == 200
            final = "declined"
        elif ending == "cancel":
            await api.accept(key, "adult-mh")
            cancel = {"reason": expected[2]}
            assert (await api.http.post(f"/api/referrals/{key}/cancel", json=cancel)).status_code == 202
            final = "cancelled"
        else:
            await api.accept(key, "adult-mh")
            await api.discharge(key, "dropped_out", today)
            final = "closed"
        await api.snapshot_until(key, lambda s: s["phase"] in (final, "aftercare"), final)

        read = await api.http.get(f"/fhir/Task/{key}")
        again = await api.http.post("/fhir", content=json.dumps(bundle), headers=FHIR_JSON)

        assert read.status_code == 200, read.text
        assert _told(read.json()) == expected
        assert again.status_code == 200, again.text
        assert (again.json()["id"], _told(again.json())) == (key, expected)
        [ehr_task] = await written(hapi_client, "Task", f"{key}/task")
        assert _told(ehr_task) == expected  # what the workflow wrote is what the referrer reads
