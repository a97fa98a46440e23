"""An EHR that refuses writes for good never ends a referral: the refusal is recorded, the referral flagged and
listed, care goes on to closure, and once the EHR's side is fixed every write is sent again, each resource then
in the EHR exactly once.

Real parts: the Temporal dev server (the list filter needs its visibility store), the API in-process with a real
worker, and our HAPI test server refusing writes through its test-only refusal switch (so these tests need the
HAPI built from this checkout: leave IOP_TEST_HAPI_URL unset, or point it at such a server).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from fhir_mappings.referral_in import referral_from_fhir
from referral_service.api.app import create_app
from referral_service.config import Settings
from referral_service.domain.referral import Identifier, ResourceRef, referral_key
from referral_service.ehr.client import FhirClient
from referral_service.programs import load_program
from referral_service.replay.clock import terminate_when_idle
from referral_service.worker import create_worker
from tests.api_server import service_settings
from tests.conftest import HAPI_SOURCE_ID
from tests.hapi_refusals import refusing
from tests.polling import eventually
from tests.referrals import referral_bundle
from workflows.referral import ReferralWorkflow
from workflows.referral_types import StartReferralInput

pytestmark = pytest.mark.timeout(300)
ADA = "ada-testpatient-adult-inpatient"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
# Every resource type the service writes, each refused with a status a real EHR answers for good.
REFUSALS = {
    "Task": 422,  # the referrer's Task and the outreach Task
    "CareTeam": 403,
    "CarePlan": 400,
    "Encounter": 404,
    "Observation": 422,
    "DocumentReference": 422,  # the note that stands in for a refused CarePlan or Encounter
}


@asynccontextmanager
async def _serving(
    env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    """The app in-process (lifespan included) and a real worker on its task queue; what the test left running
    (a referral waiting for its refused writes) is terminated afterwards."""
    settings = service_settings(hapi_base_url, "refused")
    app = create_app(settings, env.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", timeout=60) as api,
        create_worker(env.client, settings.task_queue, {HAPI_SOURCE_ID: hapi_client}, database=app.state.database),
    ):
        try:
            yield api, settings
        finally:
            async for execution in env.client.list_workflows(f"TaskQueue = '{settings.task_queue}'"):
                await terminate_when_idle(env.client.get_workflow_handle(execution.id), "test ended")


async def _snapshot_until(api: httpx.AsyncClient, key: str, until: Any, what: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await api.get(f"/api/referrals/{key}")
        return response.json() if response.status_code == 200 and until(response.json()) else None

    state: dict[str, Any] = await eventually(probe, f"{key}: {what}")
    return state


async def _listed(api: httpx.AsyncClient, key: str, **filters: str) -> dict[str, Any] | None:
    response = await api.get("/api/referrals", params={"source": HAPI_SOURCE_ID, **filters})
    assert response.status_code == 200, response.text
    return next((row for row in response.json() if row["key"] == key), None)


async def _post(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(path, json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_every_resource_type_refused_the_referral_closes_and_a_retry_writes_each_once(
    temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> None:
    today = datetime.now(UTC).date()
    # A referral entered late: everything happened weeks ago, so its aftercare checkpoints are already due and the
    # program runs to closure at once on the dev server's real clock.
    left_hospital = today - timedelta(days=60)
    bundle = referral_bundle(ADA, discharged_on=left_hospital)
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    family = patient["name"][0]["family"]
    async with (
        _serving(temporal_env, hapi_base_url, hapi_client) as (api, _),
        refusing(hapi_base_url, REFUSALS),
    ):
        with capture_logs() as logs:
            submitted = await api.post("/fhir", content=json.dumps(bundle), headers=FHIR_JSON)
            assert submitted.status_code == 201, submitted.text
            key = submitted.json()["id"]
            screening = await _snapshot_until(api, key, lambda s: s["phase"] == "screening", "screening")
            assert [(r["resource_type"], r["status"]) for r in screening["refused"].values()] == [("Task", 422)]

            intake = datetime.combine(left_hospital + timedelta(days=2), datetime.min.time(), UTC)
            await _post(
                api,
                f"/api/referrals/{key}/decision",
                {"decision": "accept", "track_id": "adult-mh", "intake_at": intake.isoformat()},
            )
            day = left_hospital + timedelta(days=3)
            for number, attended in ((1, True), (2, False), (3, False)):  # two missed in a row: an outreach Task
                session = {
                    "session_id": f"s{number}",
                    "date": (day + timedelta(days=number - 1)).isoformat(),
                    "kind": "group",
                    "minutes": 180,
                    "attended": attended,
                }
                await _post(api, f"/api/referrals/{key}/sessions", {"session": session})
            score = {"assessment_id": "phq9-1", "instrument": "PHQ-9", "score": 12, "date": day.isoformat()}
            await _post(api, f"/api/referrals/{key}/assessments", {"assessment": score})
            discharge = {"reason": "completed", "date": (day + timedelta(days=10)).isoformat()}
            await _post(api, f"/api/referrals/{key}/discharge", {"discharge": discharge})
            closed = await _snapshot_until(api, key, lambda s: s["phase"] == "closed", "closure")

        # ---- the referral went on to closure; every refusal is recorded, without patient data ----
        refused = closed["refused"]
        assert {k.removeprefix(f"{key}/"): (r["resource_type"], r["status"]) for k, r in refused.items()} == {
            "task": ("Task", 422),
            "careteam": ("CareTeam", 403),
            "careplan": ("CarePlan", 400),
            "encounter/s1": ("Encounter", 404),
            "outreach/s2": ("Task", 422),
            "observation/phq9-1": ("Observation", 422),
            "aftercare-plan": ("CarePlan", 400),
        }
        for refusal in refused.values():
            assert refusal["codes"], refusal
            assert any(f"at {refusal['resource_type']}" in text for text in refusal["issues"]), refusal
            assert "fault switch" not in json.dumps(refusal), "the diagnostics text is never kept"
        for part in ("careplan", "aftercare-plan", "encounter/s1"):  # a note was tried instead, refused as well
            instead = refused[f"{key}/{part}"]["fallback_refusal"]
            assert (instead["resource_type"], instead["status"]) == ("DocumentReference", 422)
        assert closed["task_status"] == "completed"
        assert "EHR refused a write" in [entry["event"] for entry in closed["timeline"]]
        assert family not in json.dumps(refused)
        events = [e for e in logs if e["event"] == "ehr write refused"]
        assert {e["resource_type"] for e in events} == {*REFUSALS}
        assert all(family not in json.dumps(e, default=str) for e in events)

        # ---- flagged: open in Temporal (waiting for the retry), listed by the filter ----
        described = await temporal_env.client.get_workflow_handle(key).describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
        row = await eventually(
            lambda: _listed(api, key, refused_writes="true"), "the referral in the refused-writes list"
        )
        assert (row["phase"], row["refused_writes"]) == ("closed", len(refused))
        assert await _listed(api, key, refused_writes="false") is None

        # ---- the EHR's side is fixed: one retry sends every write, as the referral stands now ----
        async with refusing(hapi_base_url, {}):
            retried = await _post(api, f"/api/referrals/{key}/retry-writes", {})
        assert retried["still_refused"] == []
        assert sorted(w["key"] for w in retried["succeeded"]) == sorted(refused)
        for write_key, refusal in refused.items():
            found = await hapi_client.search(
                refusal["resource_type"], {"identifier": f"{RESOURCE_KEY_SYSTEM}|{write_key}"}
            )
            assert len(found) == 1, f"{write_key}: {len(found)} in HAPI"
        [task] = await hapi_client.search("Task", {"identifier": f"{RESOURCE_KEY_SYSTEM}|{key}/task"})
        assert (task["status"], task["businessStatus"]["coding"][0]["code"]) == ("completed", "fulfillment-completed")
        listed_outputs = {o["valueReference"]["reference"].split("/")[0] for o in task["output"]}
        assert listed_outputs == {"CarePlan", "Encounter"}  # the Task as it stands now, not the receipt
        [plan] = await hapi_client.search("CarePlan", {"identifier": f"{RESOURCE_KEY_SYSTEM}|{key}/careplan"})
        assert plan["status"] == "completed"
        [team] = await hapi_client.search("CareTeam", {"identifier": f"{RESOURCE_KEY_SYSTEM}|{key}/careteam"})
        assert plan["careTeam"] == [{"reference": f"CareTeam/{team['id']}"}]  # the team the EHR now holds
        for note_key in (f"{key}/careplan", f"{key}/encounter/s1"):
            assert (
                await hapi_client.search("DocumentReference", {"identifier": f"{RESOURCE_KEY_SYSTEM}|{note_key}"}) == []
            )

        # ---- nothing left to retry: the referral's workflow ends, the flag is down ----
        handle = temporal_env.client.get_workflow_handle_for(ReferralWorkflow.run, key)
        final = await handle.result()
        assert (final.phase, final.refused) == ("closed", {})
        row = await eventually(lambda: _listed(api, key, refused_writes="false"), "the referral off the refused list")
        assert row["refused_writes"] == 0
        again = await api.post(f"/api/referrals/{key}/retry-writes")
        assert again.status_code == 409, again.text


async def test_a_first_task_write_the_ehr_refuses_leaves_the_referral_alive_and_flagged(
    temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> None:
    """The Task names a patient by a literal reference HAPI does not hold: HAPI refuses it (400). The referral
    waits in screening, flagged, instead of failing; decided, it goes on (and still waits for the retry)."""
    program = load_program()
    referral = referral_from_fhir(referral_bundle(ADA), source_id=HAPI_SOURCE_ID, program_org=program.organization)
    nobody = ResourceRef(resource_type="Patient", id=f"never-held-{uuid.uuid4().hex[:8]}")
    referral = referral.model_copy(update={"patient": referral.patient.model_copy(update={"ref": nobody})})
    key = referral_key(HAPI_SOURCE_ID, Identifier(system="urn:test:orders", value=uuid.uuid4().hex))
    async with _serving(temporal_env, hapi_base_url, hapi_client) as (api, settings):
        start = StartReferralInput(key=key, referral=referral, program=program, received_at=datetime.now(UTC))
        handle = await temporal_env.client.start_workflow(
            ReferralWorkflow.run, start, id=key, task_queue=settings.task_queue
        )
        state = await _snapshot_until(api, key, lambda s: s["phase"] == "screening" and s["refused"], "a refusal")

        [refusal] = state["refused"].values()
        assert (refusal["resource_type"], refusal["status"], refusal["attempts"]) == ("Task", 400, 1)
        assert any("HAPI-" in issue for issue in refusal["issues"]), refusal  # HAPI's own code, not its text
        assert nobody.id not in json.dumps(refusal)
        row = await eventually(lambda: _listed(api, key, refused_writes="true"), "the referral flagged in the list")
        assert (row["phase"], row["status"], row["refused_writes"]) == ("screening", "running", 1)
        task = await api.get(f"/fhir/Task/{key}")
        assert (task.status_code, task.json()["status"]) == (200, "received")

        declined = await _post(
            api, f"/api/referrals/{key}/decision", {"decision": "decline", "decline_reason": "no_capacity"}
        )
        assert (declined["phase"], list(declined["refused"])) == ("declined", [f"{key}/task"])
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        still = await _post(api, f"/api/referrals/{key}/retry-writes", {})
        assert (still["succeeded"], [r["status"] for r in still["still_refused"]]) == ([], [400])


async def test_a_referral_whose_workflow_ended_otherwise_shows_as_failed_in_every_list(
    temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> None:
    """Not an EHR refusal (those never end a referral): an operator terminated it. The API list, the inbox and
    the caseload show it as failed, never as the screening it stopped in; ``phase=failed`` finds it."""
    async with _serving(temporal_env, hapi_base_url, hapi_client) as (api, _):
        submitted = await api.post("/fhir", content=json.dumps(referral_bundle(ADA)), headers=FHIR_JSON)
        key = submitted.json()["id"]
        await _snapshot_until(api, key, lambda s: s["phase"] == "screening", "screening")
        await terminate_when_idle(temporal_env.client.get_workflow_handle(key), "operator stopped it")

        row = await eventually(lambda: _listed(api, key, phase="failed"), "the terminated referral under phase=failed")
        assert (row["phase"], row["status"]) == ("failed", "terminated")
        assert (await _listed(api, key))["phase"] == "failed"
        for page in ("/inbox", "/caseload"):
            html = (await api.get(page)).text
            assert f'data-referral="{key}" data-phase="failed"' in html, page
        inbox_row = (await api.get("/inbox")).text.split(f'data-referral="{key}"')[1].split("</tr>")[0]
        assert "decision-accept" not in inbox_row  # nothing to decide on a referral whose workflow is gone
