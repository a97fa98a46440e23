"""``GET /api/today``: the signed-in staff member's day (``domain.my_day``), from the read model alone."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request

from referral_service.api.access import principal_of
from referral_service.api.deps import AppState, ReadModelDep, StateDep
from referral_service.api.tokens import Role
from referral_service.domain.my_day import MyDay, my_day, roster_member
from referral_service.domain.program_day import Today
from referral_service.store.referrals import ReferralRows, RowQuery

router = APIRouter(prefix="/api", tags=["referrals"])


@router.get("/today", responses={404: {"description": "the caller's sign-in is on no roster member"}})
async def today(request: Request, services: StateDep, rows: ReadModelDep) -> MyDay:
    """Today's groups on the caller's tracks with each one's expected roster, first sessions due within the
    program's window, follow-up calls due within a week, outreach asked for, and the referrals at risk or overdue
    on the caller's caseload. The caller is the roster member whose ``subjects`` hold the token's subject; a
    program admin (and the local user without sign-in) sees everyone's."""
    return await day_of(request, services, rows)


async def day_of(request: Request, services: AppState, rows: ReferralRows) -> MyDay:
    """The caller's day; HTTPException 404 when their sign-in maps to no roster member."""
    principal = principal_of(request)
    program = services.program
    member = roster_member(program, principal.subject)
    if member is None and Role.PROGRAM_ADMIN not in principal.roles:
        raise HTTPException(
            404, detail="your sign-in is on no roster member: add its subject to your entry's subjects in the program"
        )
    everyone = Role.PROGRAM_ADMIN in principal.roles
    open_rows = [stored.row for stored in await rows.find(RowQuery(open_only=True))]
    day = Today.at(datetime.now(UTC), program.time_zone).day
    return my_day(program, open_rows, day, None if everyone else member)
