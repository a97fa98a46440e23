"""The "My day" page: ``GET /api/today``'s day as HTML, each group with a link into its attendance form."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from referral_service.api.access import principal_of
from referral_service.api.dashboard.pages import page
from referral_service.api.deps import ReadModelDep, StateDep
from referral_service.api.tokens import Role
from referral_service.domain.my_day import DayGroup, MyDay
from referral_service.domain.program import SessionKind
from referral_service.referrals.errors import NotOnRoster
from referral_service.referrals.today import day_of

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/today", response_class=HTMLResponse)
async def today(request: Request, services: StateDep, rows: ReadModelDep) -> Response:
    principal = principal_of(request)
    try:
        day = await day_of(rows, services.program, principal.subject, everyone=Role.PROGRAM_ADMIN in principal.roles)
    except NotOnRoster as unknown:  # a sign-in on no roster member: the page says how to fix it
        return page(request, "today.html", title="My day", day=None, problem=str(unknown), member=None)
    member = next((m for m in services.program.roster if m.id == day.member), None)
    links = {group.track_id: attendance_link(day, group) for group in day.groups}
    return page(request, "today.html", title="My day", day=day, problem=None, member=member, links=links)


def attendance_link(day: MyDay, group: DayGroup) -> str:
    """The group attendance form for today's session of ``group``, its roster shown."""
    query = {"track": group.track_id, "date": day.day.isoformat(), "kind": SessionKind.GROUP.value}
    return "/groups?" + urlencode({**query, "minutes": group.minutes})
