"""Program definitions are data: a TOML file validated into ``domain.program.Program`` at start-up."""

from __future__ import annotations

import tomllib
from pathlib import Path

from referral_service.domain.program import Program

DEFAULT_PROGRAM_FILE = Path(__file__).with_name("example-program.toml")


def load_program(path: Path | None = None) -> Program:
    """Read and validate a program file (default: the shipped example program)."""
    return Program.model_validate(tomllib.loads((path or DEFAULT_PROGRAM_FILE).read_text()))
