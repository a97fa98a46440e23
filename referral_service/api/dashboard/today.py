"""The "My day" page: ``GET /api/today``'s day as HTML, each group with a link into its attendance form."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from referral_service.api.dashboard.routes import _page
from referral_service.api.deps import ReadModelDep, StateDep
from referral_service.api.today_routes import day_of
from referral_service.domain.my_day import DayGroup, MyDay
from referral_service.domain.program import SessionKind

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/today", response_class=HTMLResponse)
async def today(request: Request, services: StateDep, rows: ReadModelDep) -> Response:
    try:
        day = await day_of(request, services, rows)
    except HTTPException as unknown:  # a sign-in on no roster member: the page says how to fix it
        return _page(request, "today.html", title="My day", day=None, problem=unknown.detail, member=None)
    member = next((m for m in services.program.roster if m.id == day.member), None)
    links = {group.track_id: attendance_link(day, group) for group in day.groups}
    return _page(request, "today.html", title="My day", day=day, problem=None, member=member, links=links)


def attendance_link(day: MyDay, group: DayGroup) -> str:
    """The group attendance form for today's session of ``group``, its roster shown."""
    query = {"track": group.track_id, "date": day.day.isoformat(), "kind": SessionKind.GROUP.value}
    return "/groups?" + urlencode({**query, "minutes": group.minutes})
