"""The audit trail's store: append-only, shared by whoever opens the same database, and a record it cannot
write is counted and logged, not lost silently."""

import asyncio
import sqlite3

import pytest
from structlog.testing import capture_logs

from referral_service.store.audit import AuditQuery, AuditRecord, AuditStore
from referral_service.store.database import open_database, sqlite_url

RECORD = AuditRecord(
    at="2026-12-01T08:00:00.000000+00:00",
    user="dr-lee",
    roles="clinician",
    source=None,
    action="POST /api/referrals/{key}/discharge",
    referral_key="hapi-test.SR-1.0123456789",
    status=200,
    outcome="ok",
    client="10.1.2.3",
)


def _store(tmp_path, failures=None):
    engine = open_database(sqlite_url(tmp_path / "service.sqlite"))
    return AuditStore(engine, on_failure=failures.append if failures is not None else lambda _: None)


async def test_records_cannot_be_changed_or_removed(tmp_path):
    store = _store(tmp_path)
    store.record(RECORD)
    assert await store.search(AuditQuery(referral_key=RECORD.referral_key)) == [RECORD]
    store.close()

    with sqlite3.connect(tmp_path / "service.sqlite") as db:
        for statement in ("UPDATE audit SET user = 'someone-else'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(statement)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_a_record_the_database_refuses_is_counted_and_logged(tmp_path):
    """The table is gone (a damaged file): the request's record is counted and an error logged naming the
    error type and how many records, never their content."""
    failed: list[int] = []
    store = _store(tmp_path, failed)
    with sqlite3.connect(tmp_path / "service.sqlite") as db:
        db.execute("DROP TABLE audit")

    with capture_logs() as logs:
        store.record(RECORD)
        store.close()

    assert failed == [1]
    [error] = [e for e in logs if e["event"] == "audit write failed"]
    assert error == {"event": "audit write failed", "log_level": "error", "error_type": "OperationalError", "count": 1}


async def test_text_the_database_cannot_encode_is_stored_escaped_and_the_trail_stays_readable(tmp_path):
    """A hostile URL can carry a lone surrogate into the referral key: its record is kept (escaped), and the
    records after it, and an admin's query, go on as before (a writer killed by it would hang every query)."""
    store = _store(tmp_path)
    hostile = AuditRecord(**{**RECORD.__dict__, "referral_key": "SR-\ud800"})
    store.record(hostile)
    store.record(RECORD)

    found = await asyncio.wait_for(store.search(AuditQuery()), timeout=5)
    store.close()

    assert [r.referral_key for r in found] == [RECORD.referral_key, "SR-\\ud800"]
