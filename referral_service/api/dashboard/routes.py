"""Dashboard pages: the screening inbox and one referral, with POST-redirect-GET forms for the decisions.

Talks to Temporal only through the case-manager API's helpers (visibility list, snapshot query, updates), so a
decision made here is the same workflow update as ``POST /api/referrals/{id}/decision``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jinja2
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from referral_service.api.dashboard.views import countdown, weekly_chart
from referral_service.api.deps import AppState, StateDep
from referral_service.api.referral_routes import ReferralSummary, find_referrals, read_snapshot, run_update
from referral_service.domain.discharge import DeclineReason
from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import StaffMember, StaffRole
from workflows.referral import ReferralWorkflow
from workflows.referral_types import ReferralState, ScreeningDecisionInput

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
INBOX_PHASES = (Phase.RECEIVED, Phase.SCREENING, Phase.WAITLISTED)
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
async def inbox(request: Request, services: StateDep) -> Response:
    """Referrals waiting for a screening decision (received, screening, waitlisted): a visibility query."""
    error = None
    try:
        summaries = await find_referrals(services, phases=[phase.value for phase in INBOX_PHASES])
    except HTTPException as failure:
        summaries, error = [], str(failure.detail)
    except Exception:  # the visibility store out of reach: show the page, say so
        summaries, error = [], "the workflow service is unavailable; reload to retry"
    snapshots = await asyncio.gather(*(_snapshot_or_none(services, row.key) for row in summaries))
    now = datetime.now(UTC)
    rows = [_inbox_row(row, snapshot, now) for row, snapshot in zip(summaries, snapshots, strict=True)]
    return _page(
        request,
        "inbox.html",
        title="Inbox",
        rows=rows,
        tracks=services.program.tracks,
        decline_reasons=[(reason.value, reason.value.replace("_", " ")) for reason in DeclineReason],
        list_error=error,
    )


@router.post("/referrals/{key}/decision")
async def decide(key: str, request: Request, services: StateDep) -> Response:
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
        state = await run_update(services, key, ReferralWorkflow.decide, decision)
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
    return _page(
        request,
        "referral.html",
        title=f"Referral {key}",
        state=state,
        track=track,
        team=_team_by_role(state),
        chart=weekly_chart(state.sessions, track.min_weekly_hours) if track else None,
        writes=sorted(state.writes.values(), key=lambda w: (w.resource_type, w.id)),
        workflow_url=workflow_url,
        deadline=countdown(state.next_deadline, datetime.now(UTC)),
    )


# ---- helpers -----------------------------------------------------------------------------------------


def _team_by_role(state: ReferralState) -> list[tuple[StaffRole, StaffMember]]:
    members = state.team.members if state.team else {}
    return [(role, members[role]) for role in StaffRole if role in members]


async def _snapshot_or_none(services: AppState, key: str) -> ReferralState | None:
    try:
        return await read_snapshot(services, key)
    except HTTPException:
        return None


def _inbox_row(row: ReferralSummary, snapshot: ReferralState | None, now: datetime) -> dict[str, Any]:
    """One inbox row: codes and dates only (never the patient's name, birth date or identifiers)."""
    referral = snapshot.referral if snapshot else None
    referrer = None
    if referral is not None:
        for ref in (referral.requester_organization, referral.requester):
            if ref is not None and ref.display:
                referrer = ref.display
                break
    discharge = referral.discharge if referral else None
    # The snapshot is fresher than the search index (visibility lags by seconds): prefer it when there is one.
    phase = snapshot.phase.value if snapshot else row.phase
    next_deadline = snapshot.next_deadline if snapshot else row.next_deadline
    return {
        "key": row.key,
        "phase": phase,
        "source": row.source,
        "referrer": referrer,
        "from_setting": discharge.from_setting if discharge else None,
        "discharge_date": discharge.discharge_date if discharge else None,
        "next_deadline": next_deadline,
        "countdown": countdown(next_deadline, now),
        "overdue": next_deadline is not None and next_deadline < now,
        "at_risk": snapshot.at_risk if snapshot else row.at_risk,
    }


def _page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    flash = _read_flash(request)
    html = _templates.get_template(template).render(flash=flash, path=request.url.path, **context)
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
    """Refuse a cross-site form post (a browser sends Origin with every POST)."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, detail="cross-origin form posts are refused")
