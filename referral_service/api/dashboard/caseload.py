"""The caseload board: open referrals counted by track and phase, filtered, from the read model alone."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from referral_service.api.caseloads import staff_loads
from referral_service.api.dashboard.pages import page
from referral_service.api.dashboard.people import LIST_LIMIT, caseload_row, open_rows, search_text
from referral_service.api.dashboard.views import CaseloadFilters, count_matrix
from referral_service.api.deps import ReadModelDep, StateDep
from referral_service.api.referral_list import viewer_for
from referral_service.domain.lifecycle import OPEN_IN_ORDER

router = APIRouter(tags=["dashboard"], include_in_schema=False)


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
        found = await open_rows(read_model, phases, text, track=filters.track or None)
    except Exception:  # the database out of reach: show the page, say so
        found, error = [], "the service database is unavailable; reload to retry"
    viewer = await viewer_for(request, services)
    now = datetime.now(UTC)
    rows = [row for row in (caseload_row(s, viewer, program, now) for s in found) if filters.admit(row)]
    phase_order = {phase: index for index, phase in enumerate(phases)}
    rows.sort(key=lambda r: (phase_order.get(r.phase, len(phase_order)), r.track or "", r.key))
    return page(
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
        limit_reached=len(found) >= LIST_LIMIT,
        list_error=error,
    )
