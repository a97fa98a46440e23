"""Group attendance: a whole roster's session recorded at once, one ``record_session`` update per referral."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from referral_service.api.audit_trail import note_referrals
from referral_service.api.deps import AppState, StateDep
from referral_service.api.referral_routes import read_snapshot, run_update
from referral_service.domain.attendance import AttendanceStatus, SessionRecord, attendance_flags
from referral_service.domain.program import SessionKind
from workflows.referral import ReferralWorkflow
from workflows.referral_types import RecordSessionInput

router = APIRouter(prefix="/api/groups", tags=["groups"])
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
    is the HTTP status the single-referral route would have answered)."""

    referral_id: str
    ok: bool
    status: int
    phase: str | None = None
    at_risk: bool | None = None
    error: str | None = None


class GroupSessionResult(BaseModel):
    session_id: str
    results: list[RosterResult]


@router.post(
    "/{group}/sessions",
    response_model=GroupSessionResult,
    responses={207: {"model": GroupSessionResult, "description": "some referrals refused; see each result"}},
)
async def record_group_session(
    group: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,40}$")],
    body: GroupSessionInput,
    request: Request,
    services: StateDep,
) -> JSONResponse:
    """Record one group session for its whole roster. The session id is ``<group>-<date>``, so sending the
    same roster again replaces each record with itself and changes nothing. Answers 200 when every referral
    took it, else 207 (Multi-Status) with the same body: each referral's result says what happened to it."""
    note_referrals(request, (entry.referral_id for entry in body.entries))
    answer = await record_roster(services, group, body)
    status = 200 if all(result.ok for result in answer.results) else 207
    return JSONResponse(answer.model_dump(mode="json"), status_code=status)


async def record_roster(services: AppState, group: str, body: GroupSessionInput) -> GroupSessionResult:
    """One ``record_session`` update per roster entry (also the dashboard's group attendance form)."""
    session_id = f"{group}-{body.date.isoformat()}"
    limit = asyncio.Semaphore(CONCURRENT_UPDATES)

    async def one(entry: RosterEntry) -> RosterResult:
        async with limit:
            return await _record(services, session_id, body, entry)

    results = list(await asyncio.gather(*(one(entry) for entry in body.entries)))
    return GroupSessionResult(session_id=session_id, results=results)


async def _record(services: AppState, session_id: str, body: GroupSessionInput, entry: RosterEntry) -> RosterResult:
    try:
        if body.track_id is not None:
            track = (await read_snapshot(services, entry.referral_id)).track_id
            if track != body.track_id:
                raise HTTPException(409, detail=f"this referral is on track {track}, not {body.track_id}")
        session = SessionRecord(
            session_id=session_id,
            date=body.date,
            kind=body.kind,
            minutes=entry.minutes or body.minutes,
            **attendance_flags(entry.status),
        )
        state = await run_update(
            services, entry.referral_id, ReferralWorkflow.record_session, RecordSessionInput(session=session)
        )
    except HTTPException as refused:
        return RosterResult(
            referral_id=entry.referral_id, ok=False, status=refused.status_code, error=str(refused.detail)
        )
    return RosterResult(referral_id=entry.referral_id, ok=True, status=200, phase=state.phase, at_risk=state.at_risk)
