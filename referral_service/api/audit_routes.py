"""The audit trail for program admins: who did what to which referral, newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from referral_service.api.deps import AuditDep
from referral_service.store.audit import AuditQuery, AuditRecord

router = APIRouter(prefix="/api/audit", tags=["audit"])


class AuditEntry(BaseModel):
    """One request: the caller (``user`` null when it brought no acceptable token) and its address, the route
    template it called, the referral it concerned and its outcome (``ok``, ``partial`` or the kind of refusal)."""

    at: datetime
    user: str | None
    roles: list[str]
    source: str | None
    action: str
    referral_key: str | None
    status: int
    outcome: str
    client: str | None

    @classmethod
    def of(cls, record: AuditRecord) -> AuditEntry:
        return cls(
            at=datetime.fromisoformat(record.at),
            user=record.user,
            roles=record.roles.split(",") if record.roles else [],
            source=record.source,
            action=record.action,
            referral_key=record.referral_key,
            status=record.status,
            outcome=record.outcome,
            client=record.client,
        )


@router.get("")
async def search_audit(
    store: AuditDep,
    referral: Annotated[str | None, Query(max_length=200, description="a referral key")] = None,
    user: Annotated[str | None, Query(max_length=200, description="a token subject, or 'local'")] = None,
    action: Annotated[
        str | None, Query(max_length=200, description="method and route, e.g. 'POST /api/referrals/{key}/discharge'")
    ] = None,
    since: Annotated[datetime | None, Query(description="from this time (no zone: UTC)")] = None,
    until: Annotated[datetime | None, Query(description="up to this time (no zone: UTC)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEntry]:
    """Audit records matching every filter given, newest first."""
    try:
        since, until = as_utc(since), as_utc(until)
    except ValueError as error:
        raise HTTPException(422, detail=str(error)) from None
    query = AuditQuery(referral_key=referral, user=user, action=action, since=since, until=until, limit=limit)
    return [AuditEntry.of(record) for record in await store.search(query)]


def as_utc(moment: datetime | None) -> datetime | None:
    """The time in UTC (one without a zone is UTC already); ValueError for one its zone moves past the years
    1 to 9999 (also the dashboard's check)."""
    if moment is None or moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("times must fall between the years 1 and 9999 in UTC") from None
