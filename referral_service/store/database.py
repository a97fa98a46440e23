"""Opening the service database: an engine for its URL, the schema brought up to date by the migrations.

SQLite files are created owner-only (0600) before SQLite opens them, since SQLite gives its ``-wal`` and
``-shm`` companions the main file's mode; a URL's password never reaches a log line.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK_KEY = 0x10_9E_F0_01  # PostgreSQL advisory lock: this service's migrations


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def open_database(url: str) -> Engine:
    """The engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``), its schema migrated."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _create_private_file(parsed)
        engine = create_engine(parsed, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)
    migrate(engine)
    return engine


def insert_into(engine: Engine, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An ``INSERT`` that takes ``ON CONFLICT`` clauses: SQLite and PostgreSQL both have them, each under its own
    dialect's construct."""
    return postgresql.insert(table) if engine.dialect.name == "postgresql" else sqlite.insert(table)


def scratch_database() -> Engine:
    """A SQLite database in a new temporary folder, for a worker on an ephemeral Temporal server (tests, replay,
    benchmarks): its rows describe workflows that go when the server goes."""
    return open_database(sqlite_url(Path(tempfile.mkdtemp(prefix="iop-scratch-db-")) / "service.sqlite"))


def migrate(engine: Engine) -> None:
    """Apply the migrations the database has not had, one process at a time: a worker and an API starting
    together on one database must not both create its tables (the second waits, then finds them made)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _migration_lock(engine), engine.begin() as connection:
        if engine.dialect.name == "postgresql":  # held until this transaction ends
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """For SQLite, an exclusive lock on a file beside the database (PostgreSQL takes an advisory lock)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock = Path(f"{database}.migrating")
    descriptor = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _create_private_file(url: URL) -> None:
    if not url.database or url.database == ":memory:":
        return
    path = Path(url.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    path.chmod(0o600)  # a file from an older release may have been made world-readable


def _sqlite_pragmas(connection: object, _record: ConnectionPoolEntry) -> None:
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer thread
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
