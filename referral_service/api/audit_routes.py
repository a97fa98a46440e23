"""The audit trail for program admins: who did what to which referral, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from referral_service.api.audit_entries import AuditEntry, as_utc
from referral_service.api.deps import AuditDep
from referral_service.store.audit import AuditQuery

router = APIRouter(prefix="/api/audit", tags=["audit"])


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
