"""The audit trail page for program admins: the newest records matching the filters (a GET form)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from referral_service.api.access import POLICY
from referral_service.api.audit_entries import AuditEntry, as_utc
from referral_service.api.dashboard.pages import page
from referral_service.api.deps import AuditDep
from referral_service.store.audit import AuditQuery

router = APIRouter(tags=["dashboard"], include_in_schema=False)
AUDIT_ROWS = 200  # the newest records a page shows
AUDITED_ACTIONS = sorted(f"{method} {path}" for method, path in POLICY)


@router.get("/audit", response_class=HTMLResponse)
async def audit(
    request: Request, store: AuditDep, referral: str = "", user: str = "", action: str = "", since: str = ""
) -> Response:
    """The audit trail for program admins: the newest records matching the filters (a GET form)."""
    filters = {"referral": referral, "user": user, "action": action, "since": since}
    entries: list[AuditEntry] = []
    problem = None
    try:
        moment = as_utc(datetime.fromisoformat(since)) if since else None
    except ValueError:
        problem = "since must be a date and time, YYYY-MM-DDTHH:MM (UTC)"
    else:
        query = AuditQuery(
            referral_key=referral or None, user=user or None, action=action or None, since=moment, limit=AUDIT_ROWS
        )
        entries = [AuditEntry.of(record) for record in await store.search(query)]
    return page(
        request,
        "audit.html",
        title="Audit trail",
        entries=entries,
        filters=filters,
        actions=AUDITED_ACTIONS,
        limit=AUDIT_ROWS,
        problem=problem,
        status=400 if problem else 200,
    )
