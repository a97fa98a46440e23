"""The service database on SQLite and on PostgreSQL: migrations bring an empty database to the current
schema (twice is harmless), the audit trail is append-only and shared by every process that opens it, and a
sign-out is seen by every process at once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from referral_service.store.audit import AuditQuery, AuditRecord, AuditStore
from referral_service.store.database import open_database
from referral_service.store.revocations import SessionRevocations
from referral_service.store.tables import metadata

RECORD = AuditRecord(
    at="2026-12-01T08:00:00.000000+00:00",
    user="dr-lee",
    roles="clinician",
    source=None,
    action="GET /api/referrals/{key}",
    referral_key="hapi-test.SR-1.0123456789",
    status=200,
    outcome="ok",
    client="10.1.2.3",
)


def test_migrations_make_the_schema_and_a_second_start_changes_nothing(engine: Engine, database_url: str):
    again = open_database(database_url)  # a second process starting on the same database
    tables = set(inspect(again).get_table_names())
    again.dispose()
    assert {
        "audit",
        "revoked_sessions",
        "referrals",
        "intake_rate_buckets",
        "ehr_rate_buckets",
        "alembic_version",
    } <= tables
    # The migrations leave every table as the queries expect it (a column added to tables.py needs one).
    for table in metadata.sorted_tables:
        migrated = {column["name"] for column in inspect(engine).get_columns(table.name)}
        assert migrated == {column.name for column in table.columns}, table.name
    with engine.connect() as db:
        assert db.scalar(text("SELECT version_num FROM alembic_version")) == "0006"


async def test_two_processes_share_one_trail_and_nobody_rewrites_it(engine: Engine, database_url: str):
    other = open_database(database_url)
    writer, reader = AuditStore(engine, on_failure=lambda _: None), AuditStore(other, on_failure=lambda _: None)
    writer.record(RECORD)
    writer.close()  # what one API process recorded...
    assert await reader.search(AuditQuery(user="dr-lee")) == [RECORD]  # ...another's admin reads
    other.dispose()

    for statement in ("UPDATE audit SET \"user\" = 'someone-else'", "DELETE FROM audit"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as db:
            db.execute(text(statement))


async def test_a_signed_out_session_is_revoked_for_every_process(engine: Engine, database_url: str):
    other = open_database(database_url)
    here, there = SessionRevocations(engine), SessionRevocations(other)
    assert not await there.is_revoked("session-a")

    await here.revoke("session-a", until=int(time.time()) + 3600)
    await here.revoke("session-a", until=int(time.time()) + 3600)  # signing out twice is harmless

    assert await there.is_revoked("session-a")
    assert not await there.is_revoked("session-b")
    other.dispose()


async def test_expired_revocations_are_swept_and_no_session_id_is_stored(engine: Engine):
    revocations = SessionRevocations(engine)
    await revocations.revoke("long-gone", until=int(time.time()) - 1)
    await revocations.revoke("current", until=int(time.time()) + 60)  # each sign-out sweeps the expired

    with engine.connect() as db:
        stored = [row[0] for row in db.execute(text("SELECT session_hash FROM revoked_sessions"))]
    assert len(stored) == 1
    assert "current" not in stored[0]


def test_processes_starting_together_migrate_one_at_a_time(database_url: str):
    """A worker and an API started at once on a new database: each comes up on the full schema."""
    with ThreadPoolExecutor(4) as starting:
        engines = list(starting.map(lambda _: open_database(database_url), range(4)))
    for engine in engines:
        assert "referrals" in inspect(engine).get_table_names()
        engine.dispose()
