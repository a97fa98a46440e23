"""A staff member's day, from read-model rows alone: the groups that meet today with who is expected, first
sessions due, follow-up calls and outreach due, and the referrals at risk or overdue on their caseload.
``member`` None is everyone's day (a program admin's view)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from pydantic import Field

from referral_service.domain.lifecycle import TEAM_PHASES, Phase
from referral_service.domain.program import Program, StaffMember
from referral_service.domain.referral import Frozen
from referral_service.domain.referral_row import ReferralRow

# Who a group session expects in the room (the group attendance page's roster too).
# Phases whose first session is still to come.
AWAITING_FIRST_SESSION = (Phase.ACCEPTED, Phase.INTAKE_SCHEDULED, Phase.IN_TREATMENT)
FOLLOW_UP_NOTICE = timedelta(days=7)  # a follow-up call shows this long before it is due


class DayItem(Frozen):
    key: str
    track_id: str | None
    phase: str
    due: date | None = None
    flags: list[str] = Field(default_factory=list)


class DayGroup(Frozen):
    track_id: str
    name: str
    start_hour: int
    minutes: int
    roster: list[str]  # referral keys


class MyDay(Frozen):
    day: date
    member: str | None  # the staff id, None for everyone's
    groups: list[DayGroup]
    first_sessions: list[DayItem]
    follow_ups: list[DayItem]
    outreach: list[DayItem]
    at_risk_or_overdue: list[DayItem]


def roster_member(program: Program, subject: str) -> StaffMember | None:
    """The roster member a sign-in subject belongs to."""
    return next((m for m in program.roster if subject in m.subjects), None)


def my_day(program: Program, rows: Sequence[ReferralRow], today: date, member: StaffMember | None) -> MyDay:
    open_rows = sorted((r for r in rows if not r.ended), key=lambda r: r.key)
    mine = [r for r in open_rows if member is None or member.id in r.team.values()]
    track_ids = None if member is None else set(member.tracks)
    groups = [
        DayGroup(
            track_id=track.id,
            name=track.name,
            start_hour=track.start_hour,
            minutes=round(track.hours_per_day * 60),
            roster=[r.key for r in open_rows if r.track_id == track.id and r.phase in TEAM_PHASES],
        )
        for track in program.tracks
        if today.isoweekday() in track.days and (track_ids is None or track.id in track_ids)
    ]
    first_sessions = sorted(
        (r for r in mine if r.phase in AWAITING_FIRST_SESSION and r.first_session_due and r.first_session_due >= today),
        key=lambda r: (r.first_session_due, r.key),
    )
    follow_ups = sorted(
        (r for r in mine if r.next_follow_up and r.next_follow_up <= today + FOLLOW_UP_NOTICE),
        key=lambda r: (r.next_follow_up, r.key),
    )
    return MyDay(
        day=today,
        member=member.id if member else None,
        groups=groups,
        first_sessions=[_item(r, r.first_session_due) for r in first_sessions],
        follow_ups=[_item(r, r.next_follow_up) for r in follow_ups],
        outreach=[_item(r, r.outreach_due) for r in mine if r.outreach_due],
        at_risk_or_overdue=[_item(r, None) for r in mine if r.at_risk or r.overdue],
    )


def _item(row: ReferralRow, due: date | None) -> DayItem:
    flags = (["at risk"] if row.at_risk else []) + [f"overdue: {what}" for what in row.overdue]
    return DayItem(key=row.key, track_id=row.track_id, phase=row.phase, due=due, flags=flags)
