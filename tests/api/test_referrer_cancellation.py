"""The referrer cancels by sending its copy of the closed-loop Task to ``PUT /fhir/Task/{id}``, in both styles
DOMAIN.md names: BSeR's handshake (the EHR's Task shows ``cancellation-requested``, then the program's
``cancellation-confirmed``) and Gravity's direct ``status = cancelled``. Real API over HTTP, real worker on
the Temporal dev server, and the Task's version history read back from HAPI.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from fhir_mappings.codes import BUSINESS_STATUS_SYSTEM
from referral_service.ehr.client import FhirClient
from tests.api.intake_checks import FHIR_JSON, expressions
from tests.api_server import driven_api
from tests.workflows.stories import written

pytestmark = pytest.mark.timeout(300)
REASON = "patient moved out of state"


async def _task_versions(hapi_base_url: str, task_id: str) -> list[dict[str, Any]]:
    """Every version of the EHR's Task, oldest first."""
    async with httpx.AsyncClient(timeout=30) as http:
        history = (await http.get(f"{hapi_base_url}/Task/{task_id}/_history", params={"_count": "100"})).json()
    versions = [entry["resource"] for entry in history.get("entry", [])]
    return sorted(versions, key=lambda task: int(task["meta"]["versionId"]))


def _business_status(task: dict[str, Any]) -> str:
    code: str = task["businessStatus"]["coding"][0]["code"]
    return code


@pytest.mark.parametrize("style", ["bser", "gravity"])
async def test_the_referrer_cancels_by_sending_its_task(
    style: str, temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> None:
    async with driven_api(temporal_env, hapi_base_url, hapi_client, queue_prefix="cancel") as api:
        key = await api.submit()
        await api.snapshot_until(key, lambda s: s["phase"] == "screening", "screening")
        await api.accept(key, "adult-mh")
        await api.snapshot_until(key, lambda s: s["phase"] == "intake_scheduled", "intake scheduled")
        task = (await api.http.get(f"/fhir/Task/{key}")).json()
        if style == "bser":
            task["businessStatus"] = {"coding": [{"system": BUSINESS_STATUS_SYSTEM, "code": "cancellation-requested"}]}
        else:
            task["status"] = "cancelled"
        task["statusReason"] = {"text": REASON}

        answer = await api.http.put(f"/fhir/Task/{key}", json=task, headers=FHIR_JSON)

        assert answer.status_code == 200, answer.text
        assert (answer.json()["resourceType"], answer.json()["id"]) == ("Task", key)
        state = await api.snapshot_until(key, lambda s: s["phase"] == "cancelled", "cancelled")
        assert state["timeline"][-1]["detail"] == REASON
        [ehr_task] = await written(hapi_client, "Task", f"{key}/task")
        versions = await _task_versions(hapi_base_url, ehr_task["id"])
        expected_tail = ["cancellation-requested", "cancellation-confirmed"] if style == "bser" else [
            "event-scheduled", "cancellation-confirmed"
        ]  # fmt: skip
        assert [_business_status(v) for v in versions][-2:] == expected_tail
        assert (versions[-1]["status"], versions[-1]["statusReason"]["text"]) == ("cancelled", REASON)
        if style == "bser":
            assert versions[-2]["status"] == "accepted", "a request changes the business status only"
        [plan] = await written(hapi_client, "CarePlan", f"{key}/careplan")
        assert plan["status"] == "revoked"

        again = await api.http.put(f"/fhir/Task/{key}", json=task, headers=FHIR_JSON)
        assert again.status_code == 409, again.text
        assert expressions(again.json()) == ["Task.status"]


async def test_a_task_update_that_is_not_a_cancellation_is_refused_and_changes_nothing(
    temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> None:
    async with driven_api(temporal_env, hapi_base_url, hapi_client, queue_prefix="cancel") as api:
        key = await api.submit()
        await api.snapshot_until(key, lambda s: s["phase"] == "screening", "screening")
        task = (await api.http.get(f"/fhir/Task/{key}")).json()

        completed = await api.http.put(f"/fhir/Task/{key}", json={**task, "status": "completed"}, headers=FHIR_JSON)
        elsewhere = await api.http.put(f"/fhir/Task/{key}", json={**task, "id": "another"}, headers=FHIR_JSON)
        stranger = {**task, "id": "no-such-referral", "status": "cancelled"}
        unknown = await api.http.put("/fhir/Task/no-such-referral", json=stranger, headers=FHIR_JSON)

        assert (completed.status_code, expressions(completed.json())) == (422, ["Task.status"])
        assert (elsewhere.status_code, expressions(elsewhere.json())) == (400, ["Task.id"])
        assert (unknown.status_code, expressions(unknown.json())) == (404, ["Task.id"])
        state = (await api.http.get(f"/api/referrals/{key}")).json()
        assert state["phase"] == "screening"
