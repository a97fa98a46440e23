"""One referral's page (phase, track, team, attendance chart, timeline, EHR writes) and its forms: assessment,
discharge, cancellation, team reassignment, retry of refused writes. Each form is the same workflow update or
signal as the case-manager API's route for it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from referral_service.api.access import principal_of
from referral_service.api.caseloads import with_caseloads
from referral_service.api.dashboard.forms import FormDep
from referral_service.api.dashboard.pages import page
from referral_service.api.dashboard.views import assessment_chart, countdown, weekly_chart
from referral_service.api.deps import ReadModelDep, StateDep
from referral_service.api.role_views import view_of
from referral_service.domain.assessment import AssessmentRecord, Instrument
from referral_service.domain.careteam import team_roles
from referral_service.domain.discharge import Discharge, DischargeReason
from referral_service.domain.lifecycle import ASSESSABLE, DISCHARGEABLE, TEAM_PHASES, cancellable
from referral_service.domain.program import LevelOfCare, StaffMember, StaffRole, Track
from referral_service.domain.program_day import Today
from referral_service.referrals import operations
from referral_service.referrals.errors import ReferralError
from workflows.referral import ReferralWorkflow
from workflows.referral_types import (
    CancelInput,
    DischargeInput,
    ReassignTeamInput,
    RecordAssessmentInput,
    ReferralState,
)

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/referrals/{key}", response_class=HTMLResponse)
async def referral_page(key: str, request: Request, services: StateDep) -> Response:
    """One referral: phase, track, team, attendance chart, timeline, EHR writes, link to its workflow."""
    try:
        state = await operations.snapshot(services.temporal, key)
    except ReferralError as failure:
        return page(request, "missing.html", title="Referral", key=key, reason=str(failure), status=failure.status)
    track = _track_of(state)
    settings = services.settings
    workflow_url = (
        f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{quote(settings.temporal_namespace, safe='')}"
        f"/workflows/{quote(key, safe='')}"
    )
    seen = view_of(state, principal_of(request).roles)  # what this role may see (role_views: one definition)
    return page(
        request,
        "referral.html",
        title=f"Referral {key}",
        state=state,
        parts=set(seen["view"]["parts"]),
        withheld=seen["view"]["withheld"],
        patient=seen["referral"].get("patient", {}),
        track=track,
        team=_team_by_role(state),
        chart=weekly_chart(state.sessions, track.min_weekly_hours) if track else None,
        writes=sorted(state.writes.values(), key=lambda w: (w.resource_type, w.id)),
        refused=sorted(state.refused.values(), key=lambda r: r.at),
        workflow_url=workflow_url,
        deadline=countdown(state.next_deadline, datetime.now(UTC)),
        scores=assessment_chart(state.assessments),
        may_assess=state.phase in ASSESSABLE,
        may_discharge=state.phase in DISCHARGEABLE,
        may_cancel=cancellable(state.phase),
        reassign=_reassign_choices(state, track),
        instruments=list(Instrument),
        discharge_reasons=[(reason.value, reason.value.replace("_", " ")) for reason in DischargeReason],
        today=Today.at(datetime.now(UTC), state.program.time_zone).day,  # the forms' default: the program's day
    )


@router.post("/referrals/{key}/assessments")
async def record_assessment(key: str, form: FormDep, services: StateDep) -> Response:
    """The assessment form: the ``record_assessment`` update. One instrument a day per referral: recording it
    again the same day replaces the score (same assessment id, same Observation)."""
    try:
        instrument = Instrument(form.get("instrument"))
        day = date.fromisoformat(form.get("date"))
        assessment = AssessmentRecord(
            assessment_id=f"{instrument.value}-{day.isoformat()}",
            instrument=instrument,
            score=int(form.get("score")),
            date=day,
        )
    except ValueError:  # ValidationError is one: a bad instrument, date or score
        raise form.refuse("an assessment needs an instrument, a whole-number score and a date") from None
    body = RecordAssessmentInput(assessment=assessment)
    update = operations.update(services.temporal, key, ReferralWorkflow.record_assessment, body)
    await form.attempt(update, f"{instrument.value} not recorded")
    return form.done(f"{instrument.value} {assessment.score} on {day.isoformat()} recorded")


@router.post("/referrals/{key}/discharge")
async def discharge(key: str, form: FormDep, services: StateDep) -> Response:
    """The discharge form: the ``discharge`` update with a coded reason (and, for a transfer, the level of care
    the patient goes to)."""
    try:
        level = form.get("destination_level").strip()
        destination = LevelOfCare(framework=form.get("destination_framework", "ASAM"), level=level) if level else None
        body = DischargeInput(
            discharge=Discharge(
                reason=DischargeReason(form.get("reason")),
                date=date.fromisoformat(form.get("date")),
                destination_level=destination,
                note=form.get("note"),
            )
        )
    except ValueError:
        raise form.refuse("a discharge needs a coded reason and a date") from None
    update = operations.update(services.temporal, key, ReferralWorkflow.discharge, body)
    state = await form.attempt(update, "not discharged")
    return form.done(f"discharged ({body.discharge.reason.value}); phase is now {state.phase}")


@router.post("/referrals/{key}/cancel")
async def cancel(key: str, form: FormDep, services: StateDep) -> Response:
    """The cancel form: the ``cancel`` signal (the workflow applies it a moment later)."""
    try:
        body = CancelInput(reason=form.get("reason").strip())
    except ValidationError:
        raise form.refuse("a cancellation needs a reason (one line of text)") from None
    await form.attempt(operations.cancel(services.temporal, key, body), "not cancelled")
    return form.done("cancellation sent; the phase changes once the workflow applies it")


@router.post("/referrals/{key}/team")
async def reassign_team(key: str, form: FormDep, services: StateDep, read_model: ReadModelDep) -> Response:
    """The reassign form: one role to one roster member, the ``reassign_team`` update."""
    try:
        role = StaffRole(form.get("role"))
        body = ReassignTeamInput(members={role: form.get("member")})
    except ValueError:
        raise form.refuse("a reassignment needs a role and a staff member from the roster") from None
    reassignment = await with_caseloads(read_model, body)
    update = operations.update(services.temporal, key, ReferralWorkflow.reassign_team, reassignment)
    await form.attempt(update, "care team not changed")
    staff_id = body.members[role]
    named = {member.id: member.name for member in services.program.roster}  # the roster the team is drawn from
    return form.done(f"{role.value.replace('_', ' ')} is now {named.get(staff_id, staff_id)}")


@router.post("/referrals/{key}/retry-writes")
async def retry_writes(key: str, form: FormDep, services: StateDep) -> Response:
    """The "Retry refused writes" button: the ``retry_writes`` update; the notice says which writes the EHR
    took and which it refused again."""
    result = await form.attempt(operations.retry_writes(services.temporal, key), "not retried")
    taken = ", ".join(write.resource_type for write in result.succeeded) or "none"
    if result.still_refused:
        again = ", ".join(f"{r.resource_type} (HTTP {r.status})" for r in result.still_refused)
        raise form.refuse(f"the EHR took: {taken}; still refused: {again}")
    return form.done(f"the EHR took every refused write: {taken}")


def _track_of(state: ReferralState) -> Track | None:
    if state.track_id is None:
        return None
    try:
        return state.program.track(state.track_id)
    except KeyError:
        return None


def _team_by_role(state: ReferralState) -> list[tuple[StaffRole, StaffMember]]:
    members = state.team.members if state.team else {}
    return [(role, members[role]) for role in StaffRole if role in members]


def _reassign_choices(state: ReferralState, track: Track | None) -> dict[str, Any] | None:
    """The reassign form's roles (the track's team) and staff (the roster on the track), in phases with a team."""
    if track is None or state.team is None or state.phase not in TEAM_PHASES:
        return None
    roles = team_roles(track)
    staff = [m for m in state.program.roster if track.id in m.tracks and m.role in roles]
    return {"roles": roles, "staff": sorted(staff, key=lambda m: (roles.index(m.role), m.name))}
