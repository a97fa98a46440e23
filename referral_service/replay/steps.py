"""A scenario's timeline as steps, and each step sent to a referral's workflow as the case manager's tools
send it (updates, and the referrer's cancel signal): shared by the replay and the demo caseload."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio.client import WorkflowHandle

from referral_service.domain.attendance import SessionRecord
from referral_service.domain.discharge import Discharge as DischargeRecord
from referral_service.domain.program_day import Today
from referral_service.replay.scenario import (
    Accept,
    Attend,
    Cancel,
    Decline,
    Discharge,
    FollowUp,
    Miss,
    Scenario,
    Sessions,
    Waitlist,
    session_id,
)
from workflows.referral import ReferralWorkflow
from workflows.referral_types import (
    CancelInput,
    DischargeInput,
    FollowUpInput,
    RecordSessionInput,
    ReferralState,
    ScreeningDecisionInput,
)

Handle = WorkflowHandle[ReferralWorkflow, ReferralState]
Step = Accept | Decline | Waitlist | Attend | Miss | Discharge | FollowUp | Cancel


async def send_step(handle: Handle, day0: datetime, day: int, step: Step, *, zone: str) -> None:
    """Send ``step`` (on ``day`` of a story that began at ``day0``) to the referral's workflow. Its date is
    the program's day (``zone``) at that moment of the story: never after the workflow's today."""
    on_day = Today.at(day0 + timedelta(days=day), zone).day
    match step:
        case Accept():
            intake = None if step.intake_day is None else day0 + timedelta(days=step.intake_day)
            decision = ScreeningDecisionInput(decision="accept", track_id=step.track, intake_at=intake)
            await handle.execute_update(ReferralWorkflow.decide, decision)
        case Decline():
            decision = ScreeningDecisionInput(decision="decline", decline_reason=step.reason)
            await handle.execute_update(ReferralWorkflow.decide, decision)
        case Waitlist():
            await handle.execute_update(ReferralWorkflow.decide, ScreeningDecisionInput(decision="waitlist"))
        case Attend() | Miss():
            session = SessionRecord(
                session_id=session_id(day, step.kind, step.session_id),
                date=on_day,
                kind=step.kind,
                minutes=step.minutes,
                attended=isinstance(step, Attend),
            )
            await handle.execute_update(ReferralWorkflow.record_session, RecordSessionInput(session=session))
        case Discharge():
            record = DischargeRecord(reason=step.reason, date=on_day, destination_level=step.to_level, note=step.note)
            await handle.execute_update(ReferralWorkflow.discharge, DischargeInput(discharge=record))
        case FollowUp():
            update = FollowUpInput(day=step.checkpoint, reached=step.reached, note=step.note)
            await handle.execute_update(ReferralWorkflow.record_follow_up, update)
        case Cancel():
            await handle.signal(ReferralWorkflow.cancel, CancelInput(reason=step.reason))


def steps(scenario: Scenario) -> list[tuple[int, Step]]:
    """The timeline's events by day (stable: same-day events keep the file's order), series expanded."""
    found: list[tuple[int, Step]] = []
    for event in scenario.timeline.events:
        if isinstance(event, Sessions):
            for day in event.days():
                fields = {"day": day, "kind": event.kind, "minutes": event.minutes}
                found.append(
                    (day, Miss(do="miss", **fields) if day in event.missed_days else Attend(do="attend", **fields))
                )
        else:
            found.append((event.day, event))
    return sorted(found, key=lambda step: step[0])


def describe(step: Step) -> str:
    match step:
        case Accept():
            return f"accept onto track {step.track}"
        case Decline():
            return f"decline: {step.reason}"
        case Attend() | Miss():
            return f"{step.do} {step.kind} session, {step.minutes} min"
        case Discharge():
            where = f" to {step.to_level.framework} {step.to_level.level}" if step.to_level else ""
            return f"discharge: {step.reason}{where}"
        case FollowUp():
            return f"follow-up day {step.checkpoint}: {'reached' if step.reached else 'not reached'}"
        case Cancel():
            return f"cancelled by the referrer: {step.reason}"
    return step.do
