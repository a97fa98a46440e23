"""One audit record as staff read it (the API's answer and the dashboard's table)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from referral_service.store.audit import AuditRecord


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


def as_utc(moment: datetime | None) -> datetime | None:
    """The time in UTC (one without a zone is UTC already); ValueError for one its zone moves past the years
    1 to 9999 (also the dashboard's check)."""
    if moment is None or moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("times must fall between the years 1 and 9999 in UTC") from None
