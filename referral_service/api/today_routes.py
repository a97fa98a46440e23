"""``GET /api/today``: the signed-in staff member's day (``domain.my_day``), from the read model alone."""

from __future__ import annotations

from fastapi import APIRouter, Request

from referral_service.api.access import principal_of
from referral_service.api.deps import ReadModelDep, StateDep
from referral_service.api.tokens import Role
from referral_service.domain.my_day import MyDay
from referral_service.referrals.today import day_of

router = APIRouter(prefix="/api", tags=["referrals"])


@router.get("/today", responses={404: {"description": "the caller's sign-in is on no roster member"}})
async def today(request: Request, services: StateDep, rows: ReadModelDep) -> MyDay:
    """Today's groups on the caller's tracks with each one's expected roster, first sessions due within the
    program's window, follow-up calls due within a week, outreach asked for, and the referrals at risk or overdue
    on the caller's caseload. The caller is the roster member whose ``subjects`` hold the token's subject; a
    program admin (and the local user without sign-in) sees everyone's."""
    principal = principal_of(request)
    return await day_of(rows, services.program, principal.subject, everyone=Role.PROGRAM_ADMIN in principal.roles)
