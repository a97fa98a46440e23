"""Every request to a protected route goes into the audit trail (``referral_service.audit``) and the log
stream: who (token subject, roles, source), what (method and route template, never the raw URL, whose
query can carry data), which referral, when, and how it ended (HTTP status and the kind of refusal)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict
from datetime import UTC, datetime

from fastapi import Request, Response

from referral_service.api.access import PUBLIC, route_key
from referral_service.api.client_address import client_address
from referral_service.api.tokens import Principal
from referral_service.logging import get_logger
from referral_service.store.audit import AuditRecord, AuditStore, timestamp

log = get_logger()
_KEY_PARAMS = ("key", "task_id")  # a Task's id is its referral's key
_TASK_LOCATION = "Task/"  # an intake's answer: ``Location: Task/<key>``
_REFUSALS = {
    400: "invalid",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    412: "conflict",
    413: "too-large",
    422: "invalid",
    429: "throttled",
}


def note_referrals(request: Request, keys: Iterable[str]) -> None:
    """For a route acting on referrals named in its body (a group roster): one record for each."""
    request.state.audit_referrals = list(keys)


def outcome(status: int) -> str:
    if status < 400:
        return "partial" if status == 207 else "ok"
    return "error" if status >= 500 else _REFUSALS.get(status, "refused")


class AuditTrail:
    """An HTTP middleware; the record is made once the answer is known and written by the store's thread."""

    def __init__(self, store: AuditStore, trusted_proxies: frozenset[str], address_header: str) -> None:
        self._store = store
        self._trusted_proxies = trusted_proxies
        self._address_header = address_header

    async def __call__(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        at = datetime.now(UTC)
        try:
            response = await call_next(request)
        except Exception:
            self._record(request, at, 500, None)
            raise
        self._record(request, at, response.status_code, response.headers.get("location"))
        return response

    def _record(self, request: Request, at: datetime, status: int, location: str | None) -> None:
        key = route_key(request)
        if key is None or key in PUBLIC:  # unrouted paths (404) and public ones concern no referral
            return
        principal: Principal | None = getattr(request.state, "principal", None)  # None: no acceptable token
        client = client_address(request, self._trusted_proxies, self._address_header)
        for referral in _referrals(request, location):
            record = AuditRecord(
                at=timestamp(at),
                user=principal.subject if principal else None,
                roles=",".join(sorted(principal.roles)) if principal else "",
                source=principal.source if principal else None,
                action=f"{request.method} {key[1]}",
                referral_key=referral,
                status=status,
                outcome=outcome(status),
                client=client,
            )
            log.info("audit", **asdict(record))
            self._store.record(record)


def _referrals(request: Request, location: str | None) -> list[str | None]:
    """The referral keys a request concerns: a path parameter, those its handler noted, or the one an
    intake answered with; ``[None]`` for a request about no one referral (a list, the measures)."""
    for name in _KEY_PARAMS:
        if name in request.path_params:
            return [request.path_params[name]]
    noted: list[str | None] = list(getattr(request.state, "audit_referrals", ()))
    if noted:
        return noted
    if location is not None and location.startswith(_TASK_LOCATION):
        return [location.removeprefix(_TASK_LOCATION)]
    return [None]
