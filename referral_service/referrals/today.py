"""The caller's day: their groups, first sessions, follow-up calls and outreach, from the read model."""

from __future__ import annotations

from datetime import UTC, datetime

from referral_service.domain.my_day import MyDay, my_day, roster_member
from referral_service.domain.program import Program
from referral_service.domain.program_day import Today
from referral_service.referrals.errors import NotOnRoster
from referral_service.store.referrals import ReferralRows, RowQuery


async def day_of(rows: ReferralRows, program: Program, subject: str, *, everyone: bool) -> MyDay:
    """The day of the roster member whose ``subjects`` hold ``subject``, or everyone's; ``NotOnRoster`` when the
    sign-in maps to no member and may not see everyone's."""
    member = roster_member(program, subject)
    if member is None and not everyone:
        raise NotOnRoster
    open_rows = [stored.row for stored in await rows.find(RowQuery(open_only=True))]
    day = Today.at(datetime.now(UTC), program.time_zone).day
    return my_day(program, open_rows, day, None if everyone else member)
