"""A referral's whole story on the time-skipping Temporal server, writing to the real HAPI FHIR server.

The worker runs the real workflow and activities; every assertion about the EHR reads HAPI back.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from referral_service.codec import EncryptionCodec
from referral_service.domain.discharge import DeclineReason, Discharge, DischargeReason
from referral_service.domain.lifecycle import Phase
from referral_service.replay.clock import skip_time
from tests.referrals import updated
from tests.workflows.stories import (
    keep_history,
    reach_day,
    server_today,
    session,
    start_referral,
    wait_for_phase,
    written,
)
from workflows.referral import ReferralWorkflow
from workflows.referral_base import CLINICAL_DATE_ERROR
from workflows.referral_types import (
    CancelInput,
    DischargeInput,
    ScreeningDecisionInput,
)


async def test_full_lifecycle_writes_each_resource_once_and_closes_the_loop(
    time_skipping_env, hapi_client, program, task_queue
):
    """Accept, three sessions (one missed), discharge, aftercare: HAPI holds one Task (completed, with
    outputs), one CareTeam, the treatment and aftercare CarePlans, and one Encounter per attended session.
    Each session is recorded on its day (the clock moves there first), the discharge on the last one."""
    today = await server_today(time_skipping_env, program)
    handle = await start_referral(time_skipping_env, hapi_client, program, task_queue, discharged_on=today)
    key = handle.id
    accepted = await updated(
        handle, ReferralWorkflow.decide, ScreeningDecisionInput(decision="accept", track_id="adult-mh")
    )
    assert accepted.phase == Phase.INTAKE_SCHEDULED
    assert set(accepted.team.members) == {"prescriber", "primary_therapist", "case_manager", "nurse"}
    for n, attended in ((1, True), (2, False), (3, True), (4, True)):
        await reach_day(time_skipping_env, program, today + timedelta(days=n))
        await handle.execute_update(ReferralWorkflow.record_session, session(n, attended=attended, after=today))
    in_treatment = await handle.query(ReferralWorkflow.snapshot)
    assert in_treatment.phase == Phase.IN_TREATMENT
    await handle.execute_update(
        ReferralWorkflow.discharge,
        DischargeInput(
            discharge=Discharge(reason=DischargeReason.COMPLETED, date=await server_today(time_skipping_env, program))
        ),
    )
    final = await handle.result()  # time skips through the 7- and 30-day follow-up checkpoints
    await keep_history(handle, "adult-completed-with-aftercare")

    assert final.phase == Phase.CLOSED
    assert final.overdue == ["follow-up day 7", "follow-up day 30"]  # nobody recorded them
    [task] = await written(hapi_client, "Task", f"{key}/task")
    assert (task["status"], task["businessStatus"]["coding"][0]["code"]) == ("completed", "fulfillment-completed")
    assert task["focus"]["type"] == "ServiceRequest"
    outputs = sorted(o["valueReference"]["reference"].split("/")[0] for o in task["output"])
    assert outputs == ["CarePlan", "Encounter", "Encounter", "Encounter"]
    [team] = await written(hapi_client, "CareTeam", f"{key}/careteam")
    assert (team["status"], len(team["participant"])) == ("inactive", 4)
    assert team["period"]["start"] == accepted.treatment_start.isoformat()
    [plan] = await written(hapi_client, "CarePlan", f"{key}/careplan")
    assert plan["status"] == "completed"
    assert plan["period"] == {"start": accepted.treatment_start.isoformat(), "end": final.discharge.date.isoformat()}
    [aftercare] = await written(hapi_client, "CarePlan", f"{key}/aftercare-plan")
    assert (aftercare["status"], len(aftercare["activity"])) == ("completed", 2)
    assert aftercare["period"]["start"] == final.discharge.date.isoformat()
    for session_id, count in (("s1", 1), ("s2", 0), ("s3", 1), ("s4", 1)):
        assert len(await written(hapi_client, "Encounter", f"{key}/encounter/{session_id}")) == count


async def test_decline_needs_a_coded_reason_and_tells_the_referrer(time_skipping_env, hapi_client, program, task_queue):
    """A decline without a reason is refused; with one, the Task is rejected with that reason."""
    handle = await start_referral(time_skipping_env, hapi_client, program, task_queue)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(ReferralWorkflow.decide, ScreeningDecisionInput(decision="decline"))
    assert "coded reason" in str(refused.value.cause)
    await handle.execute_update(
        ReferralWorkflow.decide, ScreeningDecisionInput(decision="decline", decline_reason=DeclineReason.NO_CAPACITY)
    )
    final = await handle.result()
    await keep_history(handle, "declined-no-capacity")
    assert final.phase == Phase.DECLINED
    [task] = await written(hapi_client, "Task", f"{handle.id}/task")
    assert (task["status"], task["statusReason"]["text"]) == ("rejected", "no_capacity")


async def test_impossible_moves_are_rejected_with_a_clear_message(time_skipping_env, hapi_client, program, task_queue):
    """Sessions cannot be recorded before acceptance, and a discharge needs a referral in treatment."""
    handle = await start_referral(time_skipping_env, hapi_client, program, task_queue)
    await wait_for_phase(handle, Phase.SCREENING)
    with pytest.raises(WorkflowUpdateFailedError) as early:
        await handle.execute_update(ReferralWorkflow.record_session, session(1))
    assert "not in phase screening" in str(early.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as discharge:
        await handle.execute_update(
            ReferralWorkflow.discharge,
            DischargeInput(discharge=Discharge(reason=DischargeReason.COMPLETED, date=date(2026, 12, 1))),
        )
    assert "cannot go from screening to discharged" in str(discharge.value.cause)
    accepted = await updated(
        handle, ReferralWorkflow.decide, ScreeningDecisionInput(decision="accept", track_id="adult-mh")
    )
    assert accepted.treatment_start is not None
    before_start = accepted.treatment_start - timedelta(days=1)
    with pytest.raises(WorkflowUpdateFailedError) as backdated:
        await handle.execute_update(
            ReferralWorkflow.discharge,
            DischargeInput(discharge=Discharge(reason=DischargeReason.COMPLETED, date=before_start)),
        )
    refusal = backdated.value.cause
    assert isinstance(refusal, ApplicationError)
    assert refusal.type == CLINICAL_DATE_ERROR  # the API answers it 422, not 409
    assert refusal.message.startswith("discharge-before-acceptance: ")
    assert "is before the program started" in refusal.message
    await handle.signal(ReferralWorkflow.cancel, CancelInput())
    assert (await handle.result()).phase == Phase.CANCELLED


async def test_unanswered_referral_is_flagged_when_the_response_deadline_passes(
    time_skipping_env, hapi_client, program, task_queue
):
    """No decision within 24 hours: the referral is at risk with the response overdue, and still waits."""
    handle = await start_referral(time_skipping_env, hapi_client, program, task_queue)
    await wait_for_phase(handle, Phase.SCREENING)
    await skip_time(time_skipping_env.client, timedelta(hours=25))
    state = await handle.query(ReferralWorkflow.snapshot)
    assert (state.phase, state.at_risk, state.overdue) == (Phase.SCREENING, True, ["response"])
    await handle.signal(ReferralWorkflow.cancel, CancelInput())
    await handle.result()
    await keep_history(handle, "response-deadline-missed")


async def test_cancellation_mid_program_revokes_the_plan_and_cancels_the_task(
    time_skipping_env, hapi_client, program, task_queue
):
    """The referrer revokes during treatment: CarePlan revoked, CareTeam inactive, Task cancelled."""
    handle = await start_referral(time_skipping_env, hapi_client, program, task_queue)
    await handle.execute_update(ReferralWorkflow.decide, ScreeningDecisionInput(decision="accept", track_id="sud"))
    await handle.execute_update(ReferralWorkflow.record_session, session(1))
    await handle.signal(ReferralWorkflow.cancel, CancelInput(reason="revoked by referrer"))
    final = await handle.result()
    await keep_history(handle, "sud-cancelled-mid-program")
    assert final.phase == Phase.CANCELLED
    [plan] = await written(hapi_client, "CarePlan", f"{handle.id}/careplan")
    [task] = await written(hapi_client, "Task", f"{handle.id}/task")
    [team] = await written(hapi_client, "CareTeam", f"{handle.id}/careteam")
    assert (plan["status"], task["status"], team["status"]) == ("revoked", "cancelled", "inactive")
    assert "peer_specialist" in final.team.members  # the SUD track has a peer specialist


async def test_history_and_search_attributes_hold_no_patient_data(
    time_skipping_env, hapi_client, program, key_ring, task_queue
):
    """The raw Temporal history of a referral in treatment, search-attribute upserts included, holds no
    patient data in the clear; decrypting its input shows the patient really is in there."""
    handle = await start_referral(time_skipping_env, hapi_client, program, task_queue)
    await handle.execute_update(ReferralWorkflow.decide, ScreeningDecisionInput(decision="accept", track_id="adult-mh"))
    await handle.execute_update(ReferralWorkflow.record_session, session(1))
    state = await handle.query(ReferralWorkflow.snapshot)
    patient = state.referral.patient
    phi = [patient.family, *patient.given, str(patient.birth_date), *(i.value for i in patient.identifiers)]

    history = await handle.fetch_history()
    raw = b"".join(event.SerializeToString() for event in history.events)
    assert [value for value in phi if value.encode() in raw] == []
    [started] = [e for e in history.events if e.HasField("workflow_execution_started_event_attributes")]
    [sealed] = started.workflow_execution_started_event_attributes.input.payloads
    [opened] = await EncryptionCodec(key_ring).decode([sealed])
    assert patient.family.encode() in opened.data

    # Search-attribute upserts are history events too, so the scan above covered them; check it did.
    upserted = {
        name
        for e in history.events
        if e.HasField("upsert_workflow_search_attributes_event_attributes")
        for name in e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    }
    assert upserted >= {"ReferralPhase", "ReferralSource", "ReferralTrack"}
    await handle.signal(ReferralWorkflow.cancel, CancelInput())
    await handle.result()
