"""The HAPI FHIR R4 test server (our Spring Boot app in ``hapi_test_server/``), built and started locally."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx

from referral_service.devstack.process import ManagedProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_hapi.sh"
STARTUP_TIMEOUT_S = 300.0
HOST = "127.0.0.1"


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


def spawn(*, jar: Path, port: int, log_path: Path, db_path: Path | None = None) -> ManagedProcess:
    """Launch HAPI on ``port`` of loopback only (in-memory H2, or a file database at ``db_path``); no waiting.

    A test EHR takes writes from anyone who reaches it, so it never listens on the machine's other interfaces."""
    java = shutil.which("java") or "java"
    argv = [java, "-Xmx1g", "-XX:+UseSerialGC", "-jar", str(jar), f"--server.port={port}", f"--server.address={HOST}"]
    if db_path is not None:
        argv.append(f"--hapi.db.path={db_path}")
    return ManagedProcess.start("HAPI FHIR test server", argv, log_path)


def start(*, jar: Path, port: int, log_path: Path, db_path: Path | None = None) -> tuple[ManagedProcess, str]:
    """``spawn``, then wait for its CapabilityStatement; return the server and its base URL."""
    server = spawn(jar=jar, port=port, log_path=log_path, db_path=db_path)
    url = base_url(port)
    server.wait_ready(lambda: metadata_ready(url), STARTUP_TIMEOUT_S)
    return server, url
