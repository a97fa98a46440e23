"""The audit trail: who did what to which referral, when, from where, and how it ended.

Temporal holds each referral's story but not who read it or who was refused, and a trail must outlive
workflow retention, so records go to the service database's append-only ``audit`` table, which every API
process shares. A record holds ids, codes, a route template and the caller's address only, never a body, a
query string or patient data.

Requests only enqueue their records: one writer thread batches them into the file, so a request never
waits for the disk. A batch that cannot be written is counted and logged (redacted); each record already
went to the log stream as an ``audit`` event when it was made, so the pipeline keeps the copy.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Engine, and_, insert, select

from referral_service.logging import get_logger
from referral_service.store.tables import audit

log = get_logger()

_BATCH = 200  # records per transaction when requests arrive faster than the disk takes them
FLUSH_WAIT_S = 2.0


@dataclass(frozen=True)
class AuditRecord:
    """One request: ``at`` is UTC ISO 8601 (so text order is time order), ``roles`` comma-separated,
    ``user`` None when no acceptable token came with it."""

    at: str
    user: str | None
    roles: str
    source: str | None
    action: str
    referral_key: str | None
    status: int
    outcome: str
    client: str | None = None


_COLUMNS = tuple(field.name for field in fields(AuditRecord))


@dataclass(frozen=True)
class AuditQuery:
    referral_key: str | None = None
    user: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


class AuditStore:
    """The ``audit`` table: ``record`` from a request, ``search`` for the admins' view."""

    def __init__(self, engine: Engine, on_failure: Callable[[int], None]) -> None:
        self._engine = engine
        self._on_failure = on_failure
        # Records, a flush marker (set once what came before it is written), or None: stop.
        self._queue: queue.Queue[AuditRecord | threading.Event | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def record(self, record: AuditRecord) -> None:
        """Hand the record to the writer thread (started on first use); never blocks."""
        with self._start_lock:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_forever, name="audit-writer", daemon=True)
                self._writer.start()
        self._queue.put(record)

    async def search(self, query: AuditQuery) -> list[AuditRecord]:
        """Matching records, newest first; everything recorded before the call is included, unless the writer
        is too far behind to catch up within ``FLUSH_WAIT_S`` (the admin then sees the table as it is)."""
        if self._writer is not None:
            written = threading.Event()
            self._queue.put(written)
            await asyncio.to_thread(written.wait, FLUSH_WAIT_S)
        return await asyncio.to_thread(self._select, query)

    def close(self) -> None:
        """Write what is queued, then stop the writer (at shut-down)."""
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
            self._writer = None

    def _write_forever(self) -> None:
        """Batches of what is waiting (at least one record: blocks for it) until ``close``'s stop marker."""
        while True:
            batch = [self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            records = [item for item in batch if isinstance(item, AuditRecord)]
            if records:
                self._write(records)
            for item in batch:
                if isinstance(item, threading.Event):
                    item.set()
            if None in batch:
                return

    def _write(self, records: list[AuditRecord]) -> None:
        try:
            with self._engine.begin() as db:
                db.execute(insert(audit), [dict(zip(_COLUMNS, _storable(record), strict=True)) for record in records])
        except Exception as error:  # the writer must live on whatever a batch holds: a query waits on it
            log.error("audit write failed", error_type=type(error).__name__, count=len(records))
            self._on_failure(len(records))

    def _select(self, query: AuditQuery) -> list[AuditRecord]:
        statement = (
            select(*(audit.c[name] for name in _COLUMNS))
            .where(and_(True, *_conditions(query)))
            .order_by(audit.c.at.desc(), audit.c.id.desc())
            .limit(query.limit)
        )
        with self._engine.connect() as db:
            return [AuditRecord(*row) for row in db.execute(statement)]


def _storable(record: AuditRecord) -> tuple[object, ...]:
    """The row for ``record``; text the database cannot encode (a lone surrogate from a hostile URL) is escaped."""
    return tuple(
        value.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(value, str) else value
        for value in astuple(record)
    )


def _conditions(query: AuditQuery) -> list[ColumnElement[bool]]:
    conditions = [
        audit.c.referral_key == query.referral_key if query.referral_key is not None else None,
        audit.c.user == query.user if query.user is not None else None,
        audit.c.action == query.action if query.action is not None else None,
        audit.c.at >= timestamp(query.since) if query.since else None,
        audit.c.at <= timestamp(query.until) if query.until else None,
    ]
    return [condition for condition in conditions if condition is not None]


def timestamp(moment: datetime) -> str:
    """The one text form of a time in the table (UTC, microseconds), so comparisons are time comparisons;
    a time without a zone is taken as UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")
