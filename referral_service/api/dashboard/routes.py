"""Dashboard pages: the screening inbox, the caseload board, one referral and the quality measures, with
POST-redirect-GET forms for the decisions.

The inbox and the caseload read the read model (``people``); the rest talks to Temporal only through the
case-manager API's helpers (snapshot query, updates), so a decision made here is the same workflow update as
``POST /api/referrals/{id}/decision``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jinja2
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from referral_service.api.access import POLICY, principal_of
from referral_service.api.audit_routes import AuditEntry, as_utc
from referral_service.api.audit_trail import note_referrals
from referral_service.api.caseloads import staff_loads, with_caseloads
from referral_service.api.dashboard.openapi_view import reference
from referral_service.api.dashboard.people import caseload_row, open_rows, person_cells, search_text
from referral_service.api.dashboard.views import (
    CaseloadFilters,
    assessment_chart,
    count_matrix,
    countdown,
    follow_up_chart,
    percent_text,
    weekly_chart,
)
from referral_service.api.deps import AppState, AuditDep, ReadModelDep, StateDep
from referral_service.api.group_routes import GroupSessionInput, GroupSessionResult, RosterEntry, record_roster
from referral_service.api.measures_routes import default_period, measure
from referral_service.api.referral_list import RowViewer
from referral_service.api.referral_routes import (
    failed_referrals,
    find_referrals,
    read_snapshot,
    read_snapshots,
    retry_refused_writes,
    run_update,
    send_cancel,
)
from referral_service.api.role_views import view_of
from referral_service.api.signin.session import browser_context
from referral_service.api.tokens import Role
from referral_service.domain.assessment import AssessmentRecord, Instrument
from referral_service.domain.careteam import team_roles
from referral_service.domain.deadlines import step_down_ineligibility
from referral_service.domain.discharge import DeclineReason, Discharge, DischargeReason
from referral_service.domain.lifecycle import (
    ASSESSABLE,
    DECIDABLE,
    DISCHARGEABLE,
    OPEN_IN_ORDER,
    TEAM_PHASES,
    cancellable,
)
from referral_service.domain.program import LevelOfCare, Program, SessionKind, StaffMember, StaffRole, Track
from referral_service.domain.program_day import Today
from referral_service.store.audit import AuditQuery
from referral_service.store.referrals import StoredRow
from workflows.referral import ReferralWorkflow
from workflows.referral_types import (
    CancelInput,
    DischargeInput,
    ReassignTeamInput,
    RecordAssessmentInput,
    ReferralState,
    ScreeningDecisionInput,
)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
CASELOAD_LIMIT = 1000
ATTENDANCE_STATUSES = ("attended", "absent", "excused", "late")
_AUDIT_ROWS = 200  # the newest records a page shows
AUDITED_ACTIONS = sorted(f"{method} {path}" for method, path in POLICY)
_FLASH_COOKIE = "iop_dashboard_flash"
_FORM_LIMIT = 4096

router = APIRouter(tags=["dashboard"], include_in_schema=False)
_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every page: values from referrals never become markup
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/inbox", status_code=303)


@router.get("/inbox", response_class=HTMLResponse)
async def inbox(request: Request, services: StateDep, read_model: ReadModelDep, q: str = "") -> Response:
    """Referrals waiting for a screening decision (received, screening, waitlisted) from the read model, with the
    patient as the role may see them; ``q`` searches by patient name or order number. Every cell comes from the
    row (no workflow is asked), so the page costs one query however long the list."""
    text = search_text(q)
    error = None
    try:
        found = await open_rows(read_model, [phase.value for phase in DECIDABLE], text, limit=CASELOAD_LIMIT)
    except Exception:  # the database out of reach: show the page, say so
        found, error = [], "the service database is unavailable; reload to retry"
    viewer = RowViewer(principal_of(request).roles, services.program, failed=await failed_referrals(services))
    now = datetime.now(UTC)
    today = Today.at(now, services.program.time_zone).day
    rows = [_inbox_row(stored, viewer, now, today) | {"patient": person_cells(viewer, stored)} for stored in found]
    return _page(
        request,
        "inbox.html",
        title="Inbox",
        rows=rows,
        q=text or "",
        tracks=services.program.tracks,
        decline_reasons=[(reason.value, reason.value.replace("_", " ")) for reason in DeclineReason],
        unreadable=sum(1 for row in rows if not row["patient"]["readable"]),
        list_error=error,
    )


@router.post("/referrals/{key}/decision")
async def decide(key: str, request: Request, services: StateDep, read_model: ReadModelDep) -> Response:
    """The inbox's accept / decline / waitlist forms: the workflow's ``decide`` update, then back to the inbox."""
    _same_origin(request)
    form = await _form(request)
    back = "/inbox"
    try:
        decision = ScreeningDecisionInput(
            decision=form.get("decision", ""),
            track_id=form.get("track_id") or None,
            decline_reason=form.get("decline_reason") or None,
        )
    except ValidationError as invalid:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors())
        return _redirect(back, "error", f"{key}: not a valid decision ({problems})")
    try:
        state = await run_update(services, key, ReferralWorkflow.decide, await with_caseloads(read_model, decision))
    except HTTPException as refused:
        return _redirect(back, "error", f"{key}: {refused.detail}")
    return _redirect(back, "notice", f"{key}: {decision.decision} recorded; phase is now {state.phase}")


@router.get("/referrals/{key}", response_class=HTMLResponse)
async def referral_page(key: str, request: Request, services: StateDep) -> Response:
    """One referral: phase, track, team, attendance chart, timeline, EHR writes, link to its workflow."""
    try:
        state = await read_snapshot(services, key)
    except HTTPException as failure:
        return _page(
            request, "missing.html", title="Referral", key=key, reason=failure.detail, status=failure.status_code
        )
    track = None
    if state.track_id is not None:
        try:
            track = state.program.track(state.track_id)
        except KeyError:
            track = None
    settings = services.settings
    workflow_url = (
        f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{quote(settings.temporal_namespace, safe='')}"
        f"/workflows/{quote(key, safe='')}"
    )
    seen = view_of(state, principal_of(request).roles)  # what this role may see (role_views: one definition)
    return _page(
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
async def record_assessment(key: str, request: Request, services: StateDep) -> Response:
    """The referral page's assessment form: the ``record_assessment`` update. One instrument a day per referral:
    recording it again the same day replaces the score (same assessment id, same Observation)."""
    _same_origin(request)
    form = await _form(request)
    back = f"/referrals/{quote(key, safe='')}"
    try:
        instrument = Instrument(form.get("instrument", ""))
        day = date.fromisoformat(form.get("date", ""))
        assessment = AssessmentRecord(
            assessment_id=f"{instrument.value}-{day.isoformat()}",
            instrument=instrument,
            score=int(form.get("score", "")),
            date=day,
        )
    except ValueError:  # ValidationError is one: a bad instrument, date or score
        return _redirect(back, "error", "an assessment needs an instrument, a whole-number score and a date")
    try:
        await run_update(
            services, key, ReferralWorkflow.record_assessment, RecordAssessmentInput(assessment=assessment)
        )
    except HTTPException as refused:
        return _redirect(back, "error", f"{instrument.value} not recorded: {refused.detail}")
    return _redirect(back, "notice", f"{instrument.value} {assessment.score} on {day.isoformat()} recorded")


@router.post("/referrals/{key}/discharge")
async def discharge(key: str, request: Request, services: StateDep) -> Response:
    """The referral page's discharge form: the ``discharge`` update with a coded reason (and, for a transfer,
    the level of care the patient goes to)."""
    _same_origin(request)
    form = await _form(request)
    back = f"/referrals/{quote(key, safe='')}"
    try:
        level = form.get("destination_level", "").strip()
        destination = LevelOfCare(framework=form.get("destination_framework", "ASAM"), level=level) if level else None
        body = DischargeInput(
            discharge=Discharge(
                reason=DischargeReason(form.get("reason", "")),
                date=date.fromisoformat(form.get("date", "")),
                destination_level=destination,
                note=form.get("note", ""),
            )
        )
    except ValueError:
        return _redirect(back, "error", "a discharge needs a coded reason and a date")
    try:
        state = await run_update(services, key, ReferralWorkflow.discharge, body)
    except HTTPException as refused:
        return _redirect(back, "error", f"not discharged: {refused.detail}")
    return _redirect(back, "notice", f"discharged ({body.discharge.reason.value}); phase is now {state.phase}")


@router.post("/referrals/{key}/cancel")
async def cancel(key: str, request: Request, services: StateDep) -> Response:
    """The referral page's cancel form: the ``cancel`` signal (the workflow applies it a moment later)."""
    _same_origin(request)
    form = await _form(request)
    back = f"/referrals/{quote(key, safe='')}"
    try:
        body = CancelInput(reason=form.get("reason", "").strip())
    except ValidationError:
        return _redirect(back, "error", "a cancellation needs a reason (one line of text)")
    try:
        await send_cancel(services, key, body)
    except HTTPException as refused:
        return _redirect(back, "error", f"not cancelled: {refused.detail}")
    return _redirect(back, "notice", "cancellation sent; the phase changes once the workflow applies it")


@router.post("/referrals/{key}/team")
async def reassign_team(key: str, request: Request, services: StateDep, read_model: ReadModelDep) -> Response:
    """The referral page's reassign form: one role to one roster member, the ``reassign_team`` update."""
    _same_origin(request)
    form = await _form(request)
    back = f"/referrals/{quote(key, safe='')}"
    try:
        role = StaffRole(form.get("role", ""))
        body = ReassignTeamInput(members={role: form.get("member", "")})
    except ValueError:
        return _redirect(back, "error", "a reassignment needs a role and a staff member from the roster")
    try:
        state = await run_update(services, key, ReferralWorkflow.reassign_team, await with_caseloads(read_model, body))
    except HTTPException as refused:
        return _redirect(back, "error", f"care team not changed: {refused.detail}")
    assert state.team is not None  # the update ran: the referral has a team holding every role of its track
    return _redirect(back, "notice", f"{role.value.replace('_', ' ')} is now {state.team.members[role].name}")


@router.post("/referrals/{key}/retry-writes")
async def retry_writes(key: str, request: Request, services: StateDep) -> Response:
    """The referral page's "Retry refused writes" button: the ``retry_writes`` update; the notice says which
    writes the EHR took and which it refused again."""
    _same_origin(request)
    back = f"/referrals/{quote(key, safe='')}"
    try:
        result = await retry_refused_writes(services, key)
    except HTTPException as refused:
        return _redirect(back, "error", f"not retried: {refused.detail}")
    taken = ", ".join(write.resource_type for write in result.succeeded) or "none"
    if result.still_refused:
        again = ", ".join(f"{r.resource_type} (HTTP {r.status})" for r in result.still_refused)
        return _redirect(back, "error", f"the EHR took: {taken}; still refused: {again}")
    return _redirect(back, "notice", f"the EHR took every refused write: {taken}")


@router.get("/groups", response_class=HTMLResponse)
async def groups(request: Request, services: StateDep) -> Response:
    """Pick a group session (track, date, kind, minutes); the roster of that track to mark in one form."""
    chosen = _session_choice(request.query_params, services.program)
    roster: list[ReferralState] = []
    error = None
    if chosen["track"]:
        roster, error = await _roster(services, chosen["track"])
    return _page(
        request,
        "groups.html",
        title="Group attendance",
        roster=roster,
        results=None,
        list_error=error,
        **_group_context(services, chosen),
    )


@router.post("/groups", response_class=HTMLResponse)
async def mark_group(request: Request, services: StateDep) -> Response:
    """Mark the whole roster: the same roster logic as ``POST /api/groups/{group}/sessions`` (the group is the
    track and session kind, so the session id is ``<track>-<kind>-<date>``); shows each referral's result."""
    _same_origin(request)
    form = await _form(request)
    chosen = _session_choice(form, services.program)
    entries = [
        RosterEntry.model_validate({"referral_id": name.removeprefix("status:"), "status": value})
        for name, value in form.items()
        if name.startswith("status:") and value in ATTENDANCE_STATUSES
    ]
    results: GroupSessionResult | None = None
    problem = None
    try:
        body = GroupSessionInput(
            date=chosen["date"],
            kind=chosen["kind"],
            minutes=chosen["minutes"],
            track_id=chosen["track"],
            entries=entries,
        )
    except ValidationError:
        problem = "pick a track, a date, minutes between 1 and 600, and at least one referral"
    else:
        note_referrals(request, (entry.referral_id for entry in entries))
        results = await record_roster(services, f"{chosen['track']}-{chosen['kind']}", body)
    roster, error = await _roster(services, chosen["track"]) if chosen["track"] else ([], None)
    return _page(
        request,
        "groups.html",
        title="Group attendance",
        roster=roster,
        results=results,
        list_error=problem or error,
        status=400 if problem else 200,
        **_group_context(services, chosen),
    )


@router.get("/caseload", response_class=HTMLResponse)
async def caseload(
    request: Request,
    services: StateDep,
    read_model: ReadModelDep,
    track: str = "",
    member: str = "",
    at_risk: str = "",
    overdue: str = "",
    q: str = "",
) -> Response:
    """Open referrals counted by track and phase, filtered by track, team member, at-risk, overdue and ``q``
    (patient name or order number): one read-model query, no workflow asked."""
    program = services.program
    track_ids = [t.id for t in program.tracks]
    staff = {m.id: m for m in program.roster}
    filters = CaseloadFilters(
        track=track if track in track_ids else "",
        member=member if member in staff else "",
        at_risk=at_risk == "yes",
        overdue=overdue == "yes",
    )
    text = search_text(q)
    error = None
    phases = [phase.value for phase in OPEN_IN_ORDER]
    try:
        found = await open_rows(read_model, phases, text, track=filters.track or None, limit=CASELOAD_LIMIT)
    except Exception:  # the database out of reach: show the page, say so
        found, error = [], "the service database is unavailable; reload to retry"
    viewer = RowViewer(principal_of(request).roles, program, failed=await failed_referrals(services))
    now = datetime.now(UTC)
    rows = [row for row in (caseload_row(s, viewer, program, now) for s in found) if filters.admit(row)]
    phase_order = {phase: index for index, phase in enumerate(phases)}
    rows.sort(key=lambda r: (phase_order.get(r.phase, len(phase_order)), r.track or "", r.key))
    return _page(
        request,
        "caseload.html",
        title="Caseload",
        rows=rows,
        matrix=count_matrix(rows, track_ids, phases),
        filters=filters,
        q=text or "",
        tracks=program.tracks,
        staff=sorted(program.roster, key=lambda m: (m.role, m.name)),
        loads=await staff_loads(read_model, program),
        unreadable=sum(1 for row in rows if not row.readable),
        limit_reached=len(found) >= CASELOAD_LIMIT,
        list_error=error,
    )


@router.get("/measures", response_class=HTMLResponse)
async def measures(request: Request, services: StateDep, read_model: ReadModelDep) -> Response:
    """The quality measures for a period of hospital discharge dates, by track and by source, with a chart."""
    given = {name: request.query_params.get(name, "") for name in ("from", "to")}
    report, problem, status = None, None, 200
    try:
        period = default_period(*(date.fromisoformat(value) if value else None for value in given.values()))
    except ValueError:
        period, problem, status = default_period(None, None), "dates must be YYYY-MM-DD", 400
    if problem is None and period[0] > period[1]:
        problem, status = "the period must not end before it starts", 400
    if problem is None:
        try:
            report = await measure(services, read_model, *period)
        except SQLAlchemyError:  # the service database out of reach: show the page, say so
            problem, status = "the service database is unavailable; reload to retry", 503
    return _page(
        request,
        "measures.html",
        title="Quality measures",
        period=period,
        given=given,
        problem=problem,
        report=report,
        chart=follow_up_chart(report.by_track) if report else None,
        percent=percent_text,
        status=status,
    )


@router.get("/audit", response_class=HTMLResponse)
async def audit(
    request: Request, store: AuditDep, referral: str = "", user: str = "", action: str = "", since: str = ""
) -> Response:
    """The audit trail for program admins: the newest records matching the filters (a GET form)."""
    filters = {"referral": referral, "user": user, "action": action, "since": since}
    entries: list[AuditEntry] = []
    problem = None
    try:
        moment = as_utc(datetime.fromisoformat(since)) if since else None
    except ValueError:
        problem = "since must be a date and time, YYYY-MM-DDTHH:MM (UTC)"
    else:
        query = AuditQuery(
            referral_key=referral or None, user=user or None, action=action or None, since=moment, limit=_AUDIT_ROWS
        )
        entries = [AuditEntry.of(record) for record in await store.search(query)]
    return _page(
        request,
        "audit.html",
        title="Audit trail",
        entries=entries,
        filters=filters,
        actions=AUDITED_ACTIONS,
        limit=_AUDIT_ROWS,
        problem=problem,
        status=400 if problem else 200,
    )


# ---- helpers -----------------------------------------------------------------------------------------


@router.get("/openapi.json")
async def openapi_document(request: Request) -> JSONResponse:
    """The OpenAPI document, for staff and their tools (behind the access rules, unlike FastAPI's own)."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse)
async def api_docs(request: Request) -> Response:
    """The API reference, rendered here from the OpenAPI document: no script, nothing from another site."""
    return _page(request, "api_docs.html", title="API reference", ref=reference(request.app.openapi()))


@router.get("/redoc")
async def redoc() -> RedirectResponse:
    """Where FastAPI's second viewer used to be: the one reference page."""
    return RedirectResponse("/docs", status_code=303)


def _session_choice(given: Mapping[str, str], program: Program) -> dict[str, Any]:
    """The group session picked in the form or the query; unknown values fall back to defaults (the date: today
    in the program's zone)."""
    tracks = program.tracks
    track = given.get("track", "")
    kind = given.get("kind", "")
    try:
        day = date.fromisoformat(given.get("date", ""))
    except ValueError:
        day = Today.at(datetime.now(UTC), program.time_zone).day
    try:
        minutes = int(given.get("minutes", "") or 180)
    except ValueError:
        minutes = 180
    return {
        "track": track if track in {t.id for t in tracks} else "",
        "date": day,
        "kind": kind if kind in {k.value for k in SessionKind} else SessionKind.GROUP.value,
        "minutes": minutes,
    }


def _group_context(services: AppState, chosen: dict[str, Any]) -> dict[str, Any]:
    return {
        "chosen": chosen,
        "tracks": services.program.tracks,
        "kinds": [(kind.value, kind.value.replace("_", " ")) for kind in SessionKind],
        "statuses": ATTENDANCE_STATUSES,
    }


async def _roster(services: AppState, track: str) -> tuple[list[ReferralState], str | None]:
    """Referrals on ``track`` expected in the room, by their snapshot (fresher than the search index)."""
    try:
        summaries = await find_referrals(services, phases=[phase.value for phase in TEAM_PHASES], track=track)
    except Exception:  # the visibility store out of reach: show the page, say so
        return [], "the workflow service is unavailable; reload to retry"
    snapshots = await read_snapshots(services, (row.key for row in summaries))
    roster = [s for s in snapshots.values() if s and s.track_id == track and s.phase in TEAM_PHASES]
    return sorted(roster, key=lambda s: s.key), None


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


def _inbox_row(stored: StoredRow, viewer: RowViewer, now: datetime, today: date) -> dict[str, Any]:
    """One inbox row from the read model: codes, dates and flags (the patient is ``person_cells``' to show);
    ``today`` is ``now``'s day where the program is."""
    row = stored.row
    return {
        "key": row.key,
        "phase": viewer.phase(stored),
        "source": row.source_id,
        "referrer": viewer.referrer(stored),
        "from_setting": row.from_setting,
        "discharge_date": row.hospital_discharge,
        "next_deadline": row.next_deadline,
        "countdown": countdown(row.next_deadline, now),
        "overdue": row.next_deadline is not None and row.next_deadline < now,
        "at_risk": row.at_risk,
        "possible_duplicates": row.possible_duplicates,
        "refused_writes": row.refused_writes,
        "eligibility": step_down_ineligibility(row.from_setting, row.hospital_discharge, today),
    }


def _page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    flash = _read_flash(request)
    admin = Role.PROGRAM_ADMIN in principal_of(request).roles  # the audit trail's link: only where it opens
    html = _templates.get_template(template).render(
        flash=flash, path=request.url.path, admin=admin, **browser_context(request), **context
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    if flash is not None:
        response.delete_cookie(_FLASH_COOKIE, path="/")
    return response


def _redirect(to: str, kind: str, text: str) -> RedirectResponse:
    """POST-redirect-GET; the outcome travels in a short-lived cookie and shows once."""
    response = RedirectResponse(to, status_code=303)
    value = base64.urlsafe_b64encode(json.dumps({"kind": kind, "text": text[:500]}).encode()).decode()
    response.set_cookie(_FLASH_COOKIE, value, max_age=60, path="/", httponly=True, samesite="strict")
    return response


def _read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(_FLASH_COOKIE)
    if not raw:
        return None
    try:
        flash = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(flash, dict) or flash.get("kind") not in ("error", "notice"):
        return None
    return {"kind": str(flash["kind"]), "text": str(flash.get("text", ""))}


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (the dashboard's forms post nothing else), first value of each field."""
    body = await request.body()
    if len(body) > _FORM_LIMIT:
        raise HTTPException(413, detail="form too large")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _same_origin(request: Request) -> None:
    """Refuse a cross-site form post. Browsers say where a request comes from in ``Sec-Fetch-Site``; under the
    pages' ``Referrer-Policy: no-referrer`` their form posts carry ``Origin: null``, so Origin is only the
    fallback for a browser without it."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        same = site == "same-origin"
    else:
        origin = request.headers.get("origin")
        same = origin is None or urlsplit(origin).netloc == request.headers.get("host")
    if not same:
        raise HTTPException(403, detail="cross-origin form posts are refused")
