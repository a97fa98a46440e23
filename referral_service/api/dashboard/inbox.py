"""The screening inbox: referrals waiting for a decision, from the read model, and its decision forms."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from referral_service.api.caseloads import with_caseloads
from referral_service.api.dashboard.forms import FormDep
from referral_service.api.dashboard.pages import page
from referral_service.api.dashboard.people import open_rows, person_cells, search_text
from referral_service.api.dashboard.views import countdown
from referral_service.api.deps import ReadModelDep, StateDep
from referral_service.api.referral_list import RowViewer, viewer_for
from referral_service.domain.deadlines import step_down_ineligibility
from referral_service.domain.discharge import DeclineReason
from referral_service.domain.lifecycle import DECIDABLE
from referral_service.domain.program_day import Today
from referral_service.referrals import operations
from referral_service.store.referrals import StoredRow
from workflows.referral import ReferralWorkflow
from workflows.referral_types import ScreeningDecisionInput

router = APIRouter(tags=["dashboard"], include_in_schema=False)


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
        found = await open_rows(read_model, [phase.value for phase in DECIDABLE], text)
    except Exception:  # the database out of reach: show the page, say so
        found, error = [], "the service database is unavailable; reload to retry"
    viewer = await viewer_for(request, services)
    now = datetime.now(UTC)
    today = Today.at(now, services.program.time_zone).day
    rows = [_inbox_row(stored, viewer, now, today) | {"patient": person_cells(viewer, stored)} for stored in found]
    return page(
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
async def decide(key: str, form: FormDep, services: StateDep, read_model: ReadModelDep) -> Response:
    """The inbox's accept / decline / waitlist forms: the workflow's ``decide`` update, then back to the inbox."""
    try:
        decision = ScreeningDecisionInput(
            decision=form.get("decision"),
            track_id=form.get("track_id") or None,
            decline_reason=form.get("decline_reason") or None,
        )
    except ValidationError as invalid:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors())
        raise form.refuse(f"{key}: not a valid decision ({problems})") from None
    decided = await with_caseloads(read_model, decision)
    state = await form.attempt(operations.update(services.temporal, key, ReferralWorkflow.decide, decided), key)
    return form.done(f"{key}: {decision.decision} recorded; phase is now {state.phase}")


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
