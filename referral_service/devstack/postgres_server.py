"""A PostgreSQL cluster of our own, from Debian's ``postgresql`` package: initialised in a folder, listening
on loopback only, for the tests of the service database and the deployed topology.

PostgreSQL refuses to run as root; under root the cluster belongs to the package's ``postgres`` user.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from referral_service.devstack.process import ManagedProcess, ServerStartError, free_port

SUPERUSER = "iop"


@dataclass
class PostgresServer:
    process: ManagedProcess
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        _run([str(_bin_dir() / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name])

    def has_database(self, name: str) -> bool:
        return [name] in self.rows("postgres", "SELECT datname FROM pg_database")

    def rows(self, database: str, query: str) -> list[list[str]]:
        """``query``'s rows through ``psql``, each a list of its columns as text."""
        argv = [str(_bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", database]
        return [line.split("|") for line in _run([*argv, "-At", "-c", query]).splitlines()]

    def stop(self) -> None:
        self.process.stop()


def reachable_folder(prefix: str) -> Path:
    """A new temporary folder the cluster's owner (``postgres`` under root) can reach, for its data folder."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


def start_postgres(data_dir: Path, port: int | None = None) -> PostgresServer:
    """Initialise ``data_dir`` when it is new, then start the server on ``port`` (a free one when None)."""
    port = port or free_port()
    if not (data_dir / "PG_VERSION").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        _own(data_dir)
        _run([str(_bin_dir() / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8"])
    argv = [str(_bin_dir() / "postgres"), "-D", str(data_dir), "-p", str(port), "-h", "127.0.0.1", "-k", str(data_dir)]
    # The default 100 connections do not leave room for a Temporal cluster's four services (up to 30 each).
    argv += ["-c", "max_connections=200"]
    process = ManagedProcess.start("postgresql", _as_owner(argv), data_dir.parent / "postgresql.log")
    server = PostgresServer(process=process, port=port)
    process.wait_ready(lambda: _accepts(port), timeout_s=30)
    return server


def _bin_dir() -> Path:
    """The newest installed server's binaries (``/usr/lib/postgresql/<major>/bin``)."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise ServerStartError("PostgreSQL is not installed: `apt-get install postgresql` (scripts/setup.sh does)")
    return versions[-1].parent


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _own(data_dir: Path) -> None:
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(data_dir, owner.pw_uid, owner.pw_gid)
        data_dir.chmod(0o700)


def _run(argv: list[str]) -> str:
    done = subprocess.run(_as_owner(argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServerStartError(f"{Path(argv[0]).name} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def _accepts(port: int) -> bool:
    argv = [str(_bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0
