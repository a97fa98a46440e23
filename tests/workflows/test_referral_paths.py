"""The other ways a referral goes: waitlist, no-shows, a missed first session, transfer, an EHR outage.

Time-skipping Temporal server, real worker, real HAPI; every EHR assertion reads HAPI back.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as clock

import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError

from referral_service.domain.discharge import Discharge, DischargeReason
from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import LevelOfCare
from referral_service.ehr.client import FhirClient
from referral_service.ehr.source import SourceConfig
from referral_service.replay.clock import skip_time
from referral_service.worker import create_worker
from tests.conftest import HAPI_SOURCE_ID
from tests.program_day import program_today
from tests.referrals import updated
from tests.workflows.stories import (
    end_leftovers,
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
from workflows.referral_types import CancelInput, DischargeInput, ReferralState, ScreeningDecisionInput

ACCEPT_ADULT = ScreeningDecisionInput(decision="accept", track_id="adult-mh")


async def _task(hapi: FhirClient, key: str) -> tuple[str, str]:
    [task] = await written(hapi, "Task", f"{key}/task")
    return task["status"], task["businessStatus"]["coding"][0]["code"]


async def test_waitlisted_then_accepted(time_skipping_env, hapi_client, program, task_queue):
    """A waitlisted referral tells the referrer so, and can be accepted later from the waitlist."""
    handle = await start_referral(time_skipping_env, hapi_client, program, task_queue)
    waiting = await updated(handle, ReferralWorkflow.decide, ScreeningDecisionInput(decision="waitlist"))
    assert waiting.phase == Phase.WAITLISTED
    assert await _task(hapi_client, handle.id) == ("received", "waitlisted")
    await skip_time(time_skipping_env.client, timedelta(days=3))  # no response deadline while waitlisted
    assert "response" not in (await handle.query(ReferralWorkflow.snapshot)).overdue
    accepted = await updated(handle, ReferralWorkflow.decide, ACCEPT_ADULT)
    assert accepted.phase == Phase.INTAKE_SCHEDULED
    assert await _task(hapi_client, handle.id) == ("accepted", "event-scheduled")
    await handle.signal(ReferralWorkflow.cancel, CancelInput())
    await handle.result()
    await keep_history(handle, "waitlisted-then-accepted")


async def test_two_no_shows_put_the_referral_at_risk_and_attending_clears_it(
    time_skipping_env, hapi_client, program, task_queue
):
    """Consecutive absences reaching the program's threshold (2) flag the referral; a visit clears it."""
    today = await server_today(time_skipping_env, program)  # no deadline overdue to blur the flag
    handle = await start_referral(time_skipping_env, hapi_client, program, task_queue, discharged_on=today)
    await handle.execute_update(ReferralWorkflow.decide, ACCEPT_ADULT)

    async def record(n: int, attended: bool = True) -> ReferralState:
        await reach_day(time_skipping_env, program, today + timedelta(days=n))  # entered on the day
        return await updated(handle, ReferralWorkflow.record_session, session(n, attended=attended, after=today))

    await record(1)
    once = await record(2, attended=False)
    assert not once.at_risk
    twice = await record(3, attended=False)
    assert twice.at_risk
    back = await record(4)
    assert not back.at_risk
    assert [e.event for e in back.timeline].count("session missed") == 2
    await handle.signal(ReferralWorkflow.cancel, CancelInput())
    await handle.result()
    await keep_history(handle, "no-shows-at-risk")


async def test_missed_first_session_deadline_escalates(time_skipping_env, hapi_client, program, task_queue):
    """Accepted but not seen within 7 days of hospital discharge: flagged at risk with the deadline named; a
    visit within the 7 days that is entered late lifts the flag, one after them does not."""
    today = await server_today(time_skipping_env, program)
    handle = await start_referral(time_skipping_env, hapi_client, program, task_queue, discharged_on=today)
    accepted = await updated(handle, ReferralWorkflow.decide, ACCEPT_ADULT)
    assert accepted.next_deadline is not None
    assert accepted.next_deadline.date() == today + timedelta(days=8)  # the end of day 7
    assert "first session" not in accepted.overdue
    await skip_time(time_skipping_env.client, timedelta(days=9))
    late = await handle.query(ReferralWorkflow.snapshot)
    assert (late.phase, late.at_risk, late.overdue) == (Phase.INTAKE_SCHEDULED, True, ["first session"])
    seen_late = await updated(handle, ReferralWorkflow.record_session, session(8, after=today))
    assert (seen_late.at_risk, seen_late.overdue) == (True, ["first session"])  # day 8 is too late
    # A day-6 visit entered only now: the deadline was met after all, and the flag it raised is lifted.
    entered_late = await updated(handle, ReferralWorkflow.record_session, session(6, after=today))
    assert (entered_late.at_risk, entered_late.overdue) == (False, [])
    assert entered_late.timeline[-1].event == "deadline met after all"
    await handle.signal(ReferralWorkflow.cancel, CancelInput())
    await handle.result()
    await keep_history(handle, "first-session-deadline-missed")


async def test_transfer_to_a_higher_level_closes_the_loop_as_transferred(
    time_skipping_env, hapi_client, program, task_queue
):
    """A transfer ends the program without aftercare; the referrer's Task says transferred."""
    handle = await start_referral(time_skipping_env, hapi_client, program, task_queue)
    await handle.execute_update(ReferralWorkflow.decide, ACCEPT_ADULT)
    await handle.execute_update(ReferralWorkflow.record_session, session(1))
    today = await server_today(time_skipping_env, program)
    php = LevelOfCare(framework="ASAM", edition="3", level="2.5")
    transfer = Discharge(reason=DischargeReason.TRANSFERRED, date=today, destination_level=php)
    await handle.execute_update(ReferralWorkflow.discharge, DischargeInput(discharge=transfer))
    final = await handle.result()
    await keep_history(handle, "transferred-to-php")
    assert final.phase == Phase.TRANSFERRED
    assert final.follow_ups == []
    assert await _task(hapi_client, handle.id) == ("completed", "transferred")
    [plan] = await written(hapi_client, "CarePlan", f"{handle.id}/careplan")
    assert plan["status"] == "completed"
    assert await written(hapi_client, "CarePlan", f"{handle.id}/aftercare-plan") == []


async def test_ehr_outage_waits_and_then_writes_exactly_once(temporal_env, hapi_client, program):
    """While the EHR refuses connections the referral waits in `received`, retrying; once it is back, the
    receipt Task is written once and the referral moves on. (Dev server: retries back off in real time.)"""
    queue = f"referrals-{uuid.uuid4().hex[:8]}"
    down = FhirClient(SourceConfig(id=HAPI_SOURCE_ID, base_url="http://127.0.0.1:9/fhir", timeout_seconds=1))
    async with create_worker(temporal_env.client, queue, {HAPI_SOURCE_ID: down}):
        handle = await start_referral(temporal_env, hapi_client, program, queue)
        await asyncio.sleep(5)  # several attempts fail meanwhile
        stuck = await handle.query(ReferralWorkflow.snapshot)
        assert stuck.phase == Phase.RECEIVED
        assert await written(hapi_client, "Task", f"{handle.id}/task") == []
    await down.aclose()
    async with create_worker(temporal_env.client, queue, {HAPI_SOURCE_ID: hapi_client}):
        try:
            await wait_for_phase(handle, Phase.SCREENING)
            await handle.signal(ReferralWorkflow.cancel, CancelInput())
            await handle.result()
        finally:
            await end_leftovers(queue)
    assert await _task(hapi_client, handle.id) == ("cancelled", "cancellation-confirmed")


async def test_a_session_after_a_discharge_still_being_written_is_refused(temporal_env, hapi_client, program):
    """The EHR is down while a discharge dated yesterday is written: the referral waits in treatment, retrying.
    A session dated today, after that discharge, is refused meanwhile (``session-after-discharge``); once the EHR
    is back the discharge completes without it. (Dev server: its today is the wall clock's.)"""
    queue = f"referrals-{uuid.uuid4().hex[:8]}"
    today = program_today(program=program)
    intake = datetime.combine(today - timedelta(days=3), clock(12), UTC)  # entered late: the plan began then
    async with create_worker(temporal_env.client, queue, {HAPI_SOURCE_ID: hapi_client}):
        handle = await start_referral(temporal_env, hapi_client, program, queue)
        accept = ScreeningDecisionInput(decision="accept", track_id="adult-mh", intake_at=intake)
        await handle.execute_update(ReferralWorkflow.decide, accept)
        await handle.execute_update(ReferralWorkflow.record_session, session(1))
    down = FhirClient(SourceConfig(id=HAPI_SOURCE_ID, base_url="http://127.0.0.1:9/fhir", timeout_seconds=1))
    yesterday = Discharge(reason=DischargeReason.COMPLETED, date=today - timedelta(days=1))
    tonight = session(0, after=today)
    try:
        async with create_worker(temporal_env.client, queue, {HAPI_SOURCE_ID: down}):
            discharging = await handle.start_update(
                ReferralWorkflow.discharge,
                DischargeInput(discharge=yesterday),
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            )
            pending = await handle.query(ReferralWorkflow.snapshot)
            assert (pending.phase, pending.discharge) == (Phase.IN_TREATMENT, yesterday)
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(ReferralWorkflow.record_session, tonight)
        await down.aclose()
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError)
        assert (cause.type, cause.message) == (
            CLINICAL_DATE_ERROR,
            f"session-after-discharge: a session on {today} cannot be after the program discharge ({yesterday.date})",
        )
        async with create_worker(temporal_env.client, queue, {HAPI_SOURCE_ID: hapi_client}):
            await discharging.result()
            done = await handle.query(ReferralWorkflow.snapshot)
            assert done.phase in (Phase.DISCHARGED, Phase.AFTERCARE)
            assert [s.session_id for s in done.sessions] == ["s1"]
            assert await written(hapi_client, "Encounter", f"{handle.id}/encounter/s0") == []
            await end_leftovers(queue)  # while a worker still serves its aftercare writes
    finally:
        await end_leftovers(queue)  # a failure above: whatever is left
