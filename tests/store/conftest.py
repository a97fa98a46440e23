"""The service database under test: SQLite in a folder of the test, and PostgreSQL (``postgres`` in
tests/conftest.py): the same code must hold on both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from referral_service.devstack.postgres_server import PostgresServer
from referral_service.store.database import open_database, sqlite_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty service database of each kind."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "service.sqlite")
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"service_{uuid.uuid4().hex[:8]}"
    server.create_database(name)
    return server.url(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()
