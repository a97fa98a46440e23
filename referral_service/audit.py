"""The audit trail: who did what to which referral, when, and how it ended; the one database the service adds.

Temporal holds each referral's story but not who read it or who was refused, and a trail must outlive
workflow retention, so records go to an append-only SQLite table (WAL). A record holds ids, codes and a
route template only, never a body, a query string or patient data.

Requests only enqueue their records: one writer thread batches them into the file, so a request never
waits for the disk. A batch that cannot be written is counted and logged (redacted); each record already
went to the log stream as an ``audit`` event when it was made, so the pipeline keeps the copy.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from referral_service.logging import get_logger

log = get_logger()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    user TEXT,
    roles TEXT NOT NULL,
    source TEXT,
    action TEXT NOT NULL,
    referral_key TEXT,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_referral ON audit (referral_key, at);
CREATE INDEX IF NOT EXISTS audit_by_user ON audit (user, at);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"""
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
    """The table at ``path``: ``record`` from a request, ``search`` for the admins' view."""

    def __init__(self, path: Path, on_failure: Callable[[int], None]) -> None:
        self._path = path
        self._on_failure = on_failure
        # Records, a flush marker (set once what came before it is written), or None: stop.
        self._queue: queue.Queue[AuditRecord | threading.Event | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._start_lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connection() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

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

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self._path, timeout=10)) as db, db:
            yield db

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
        placeholders = ", ".join("?" for _ in _COLUMNS)
        insert = f"INSERT INTO audit ({', '.join(_COLUMNS)}) VALUES ({placeholders})"  # noqa: S608 - our columns
        try:
            with self._connection() as db:
                db.executemany(insert, [_storable(record) for record in records])
        except Exception as error:  # the writer must live on whatever a batch holds: a query waits on it
            log.error("audit write failed", error_type=type(error).__name__, count=len(records))
            self._on_failure(len(records))

    def _select(self, query: AuditQuery) -> list[AuditRecord]:
        clauses, values = _where(query)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM audit {clauses} ORDER BY at DESC, id DESC LIMIT ?"  # noqa: S608
        with self._connection() as db:
            rows = db.execute(sql, [*values, query.limit]).fetchall()
        return [AuditRecord(*row) for row in rows]


def _storable(record: AuditRecord) -> tuple[object, ...]:
    """The row for ``record``; text SQLite cannot encode (a lone surrogate from a hostile URL) is escaped."""
    return tuple(
        value.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(value, str) else value
        for value in astuple(record)
    )


def _where(query: AuditQuery) -> tuple[str, list[str]]:
    """The WHERE clause (column names are ours; every value is a bound parameter)."""
    conditions = [
        (column, operator, value)
        for column, operator, value in (
            ("referral_key", "=", query.referral_key),
            ("user", "=", query.user),
            ("action", "=", query.action),
            ("at", ">=", timestamp(query.since) if query.since else None),
            ("at", "<=", timestamp(query.until) if query.until else None),
        )
        if value is not None
    ]
    if not conditions:
        return "", []
    return "WHERE " + " AND ".join(f"{c} {op} ?" for c, op, _ in conditions), [v for _, _, v in conditions]


def timestamp(moment: datetime) -> str:
    """The one text form of a time in the table (UTC, microseconds), so comparisons are time comparisons;
    a time without a zone is taken as UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")
