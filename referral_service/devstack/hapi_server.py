"""The HAPI FHIR R4 test server (our Spring Boot app in ``hapi_test_server/``), built and started locally: on
H2 (in memory, or a file) or on a PostgreSQL database through ``deploy/hapi/postgres.yaml``, the settings file
docker-compose's ``hapi`` service uses too."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from referral_service.devstack.postgres_server import SUPERUSER, PostgresServer
from referral_service.devstack.process import ManagedProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_hapi.sh"
STARTUP_TIMEOUT_S = 300.0
HOST = "127.0.0.1"
POSTGRES_SETTINGS = REPO_ROOT / "deploy" / "hapi" / "postgres.yaml"
# Sized for a burst (python -m bench.hapi_burst): 300 validated conditional Task creates at once took the heap to
# 1.3 GB (under -Xmx4g); under -Xmx1g back-to-back full collections starved the connection pool and 38 of them
# got 500. Idle, the heap stays far below the ceiling, which it reaches only under such load.
DEFAULT_HEAP = "2g"


@dataclass(frozen=True)
class HapiDatabase:
    """A PostgreSQL database for HAPI. Handed over in the environment (postgres.yaml reads it), so a password
    never shows in the process list."""

    jdbc_url: str
    username: str
    password: str = ""

    @classmethod
    def on(cls, postgres: PostgresServer, database: str) -> HapiDatabase:
        """``database`` on a cluster from ``start_postgres`` (loopback, trust authentication)."""
        return cls(jdbc_url=f"jdbc:postgresql://127.0.0.1:{postgres.port}/{database}", username=SUPERUSER)

    def environment(self) -> dict[str, str]:
        return {"HAPI_DB_URL": self.jdbc_url, "HAPI_DB_USERNAME": self.username, "HAPI_DB_PASSWORD": self.password}


def jvm_options(heap: str) -> list[str]:
    """The JVM's options here and in docker-compose (``JAVA_TOOL_OPTIONS``): the heap ceiling, and the serial
    collector, whose footprint suits a machine shared with the rest of the stack."""
    return [f"-Xmx{heap}", "-XX:+UseSerialGC"]


def settings_options(settings_file: Path | str) -> list[str]:
    """Layer a settings file (e.g. ``POSTGRES_SETTINGS``) over the jar's own application.yaml."""
    return [f"--spring.config.additional-location=file:{settings_file}"]


def build_jar() -> Path:
    """Build the server jar if its sources changed (the script caches by source hash); return its path."""
    if not BUILD_SCRIPT.exists():
        raise FileNotFoundError(f"{BUILD_SCRIPT} is missing: the HAPI test server ships with a source checkout")
    bash = shutil.which("bash") or "/bin/bash"
    done = subprocess.run([bash, str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True)
    return Path(done.stdout.strip().splitlines()[-1])


def metadata_ready(base_url: str) -> bool:
    """Readiness is a CapabilityStatement from ``GET {base}/metadata``."""
    try:
        response = httpx.get(f"{base_url}/metadata", timeout=5.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.json().get("resourceType") == "CapabilityStatement"


def base_url(port: int) -> str:
    return f"http://{HOST}:{port}/fhir"


def spawn(
    *,
    jar: Path,
    port: int,
    log_path: Path,
    db_path: Path | None = None,
    database: HapiDatabase | None = None,
    heap: str = DEFAULT_HEAP,
) -> ManagedProcess:
    """Launch HAPI on ``port`` of loopback only, on in-memory H2, a file database at ``db_path``, or ``database``
    (PostgreSQL); ``heap`` is ``-Xmx``'s value. No waiting.

    A test EHR takes writes from anyone who reaches it, so it never listens on the machine's other interfaces."""
    if db_path is not None and database is not None:
        raise ValueError("HAPI takes one database: an H2 file (db_path) or PostgreSQL (database), not both")
    java = shutil.which("java") or "java"
    argv = [java, *jvm_options(heap), "-jar", str(jar), f"--server.port={port}", f"--server.address={HOST}"]
    if db_path is not None:
        argv.append(f"--hapi.db.path={db_path}")
    if database is not None:
        argv.extend(settings_options(POSTGRES_SETTINGS))
    env = database.environment() if database is not None else None
    return ManagedProcess.start("HAPI FHIR test server", argv, log_path, env=env)


def start(
    *,
    jar: Path,
    port: int,
    log_path: Path,
    db_path: Path | None = None,
    database: HapiDatabase | None = None,
    heap: str = DEFAULT_HEAP,
) -> tuple[ManagedProcess, str]:
    """``spawn``, then wait for its CapabilityStatement; return the server and its base URL."""
    server = spawn(jar=jar, port=port, log_path=log_path, db_path=db_path, database=database, heap=heap)
    url = base_url(port)
    server.wait_ready(lambda: metadata_ready(url), STARTUP_TIMEOUT_S)
    return server, url
