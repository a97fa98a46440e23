"""Files holding secrets or access records are the service user's alone (0600), from the moment they exist:
the embedded stack's codec key and the service database with SQLite's companions (``-wal``, ``-shm``)."""

from __future__ import annotations

import os
import stat

from sqlalchemy import text

from referral_service.config import dev_key_ring
from referral_service.store.database import open_database, sqlite_url


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_dev_key_file_is_owner_only_even_under_a_permissive_umask(tmp_path):
    previous = os.umask(0o000)
    try:
        dev_key_ring(tmp_path)
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "codec-keys.json") == 0o600


def test_the_service_database_and_its_companions_are_owner_only(tmp_path):
    previous = os.umask(0o022)  # the usual umask: what left audit.sqlite 0644
    try:
        engine = open_database(sqlite_url(tmp_path / "service.sqlite"))
        with engine.begin() as db:  # a write: SQLite makes its -wal and -shm files
            db.execute(text("INSERT INTO revoked_sessions VALUES ('x', 0)"))
        files = sorted(tmp_path.glob("service.sqlite*"))
        modes = {path.name: _mode(path) for path in files}
        engine.dispose()
    finally:
        os.umask(previous)
    # with the lock file migrations take (``database.migrate``)
    assert set(modes) == {"service.sqlite", "service.sqlite-wal", "service.sqlite-shm", "service.sqlite.migrating"}
    assert set(modes.values()) == {0o600}


def test_a_database_file_left_world_readable_by_an_older_release_is_closed_at_start(tmp_path):
    path = tmp_path / "service.sqlite"
    path.touch(mode=0o644)
    path.chmod(0o644)
    open_database(sqlite_url(path)).dispose()
    assert _mode(path) == 0o600
