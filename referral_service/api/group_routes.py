"""``POST /api/groups/{group}/sessions``: a whole roster's session recorded at once (``referrals.groups``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from referral_service.api.audit_trail import note_referrals
from referral_service.api.deps import StateDep
from referral_service.referrals.groups import GroupSessionInput, GroupSessionResult, record_roster

router = APIRouter(prefix="/api/groups", tags=["groups"])


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
    answer = await record_roster(services.temporal, group, body)
    status = 200 if all(result.ok for result in answer.results) else 207
    return JSONResponse(answer.model_dump(mode="json"), status_code=status)
