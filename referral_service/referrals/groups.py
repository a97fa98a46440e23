"""Group attendance: a whole roster's session recorded at once, one ``record_session`` update per referral."""

from __future__ import annotations

import asyncio
from datetime import date

from pydantic import BaseModel, Field
from temporalio.client import Client

from referral_service.domain.attendance import AttendanceStatus, SessionRecord, attendance_flags
from referral_service.domain.program import SessionKind
from referral_service.referrals import operations
from referral_service.referrals.errors import ReferralError, Refused
from workflows.referral import ReferralWorkflow
from workflows.referral_types import RecordSessionInput

# Updates in flight at once for one roster: enough for a group of a dozen, gentle on the worker and the EHR.
CONCURRENT_UPDATES = 8


class RosterEntry(BaseModel):
    referral_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,120}$")  # a referral key's shape (domain.referral)
    status: AttendanceStatus
    minutes: int | None = Field(default=None, gt=0, le=600)  # when this patient's time differs (late arrival)


class GroupSessionInput(BaseModel):
    date: date
    kind: SessionKind = SessionKind.GROUP
    minutes: int = Field(gt=0, le=600)
    track_id: str | None = None  # when given, a referral on another track is refused
    entries: list[RosterEntry] = Field(min_length=1, max_length=200)


class RosterResult(BaseModel):
    """One referral's outcome: the new phase and at-risk flag, or why the session was refused (``status``
    is the HTTP status the single-referral route would have answered: the error's)."""

    referral_id: str
    ok: bool
    status: int
    phase: str | None = None
    at_risk: bool | None = None
    error: str | None = None


class GroupSessionResult(BaseModel):
    session_id: str
    results: list[RosterResult]


async def record_roster(client: Client, group: str, body: GroupSessionInput) -> GroupSessionResult:
    """One ``record_session`` update per roster entry (also the dashboard's group attendance form)."""
    session_id = f"{group}-{body.date.isoformat()}"
    limit = asyncio.Semaphore(CONCURRENT_UPDATES)

    async def one(entry: RosterEntry) -> RosterResult:
        async with limit:
            return await _record(client, session_id, body, entry)

    results = list(await asyncio.gather(*(one(entry) for entry in body.entries)))
    return GroupSessionResult(session_id=session_id, results=results)


async def _record(client: Client, session_id: str, body: GroupSessionInput, entry: RosterEntry) -> RosterResult:
    try:
        if body.track_id is not None:
            track = (await operations.snapshot(client, entry.referral_id)).track_id
            if track != body.track_id:
                raise Refused(f"this referral is on track {track}, not {body.track_id}")
        session = SessionRecord(
            session_id=session_id,
            date=body.date,
            kind=body.kind,
            minutes=entry.minutes or body.minutes,
            **attendance_flags(entry.status),
        )
        state = await operations.update(
            client, entry.referral_id, ReferralWorkflow.record_session, RecordSessionInput(session=session)
        )
    except ReferralError as refused:
        return RosterResult(referral_id=entry.referral_id, ok=False, status=refused.status, error=str(refused))
    return RosterResult(referral_id=entry.referral_id, ok=True, status=200, phase=state.phase, at_risk=state.at_risk)
