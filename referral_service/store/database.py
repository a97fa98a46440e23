"""Opening the service database: an engine for its URL, the schema brought up to date by the migrations.

SQLite files are created owner-only (0600) before SQLite opens them, since SQLite gives its ``-wal`` and
``-shm`` companions the main file's mode; a URL's password never reaches a log line.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS = Path(__file__).parent / "migrations"


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


def scratch_database() -> Engine:
    """A SQLite database in a new temporary folder, for a worker on an ephemeral Temporal server (tests, replay,
    benchmarks): its rows describe workflows that go when the server goes."""
    return open_database(sqlite_url(Path(tempfile.mkdtemp(prefix="iop-scratch-db-")) / "service.sqlite"))


def migrate(engine: Engine) -> None:
    """Apply the migrations the database has not had (concurrent starts are safe: each runs in a transaction)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


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
