"""What every client command shares: ``--api-url``, ``--timeout``, ``--json``, and the argument types."""

from __future__ import annotations

import argparse
import json
import re
from datetime import date, time
from typing import Any

DEFAULT_TIMEOUT_S = 30.0


def add_client_options(parser: argparse.ArgumentParser, *, json_help: str | None) -> None:
    """``--api-url`` and ``--timeout`` (and ``--json`` when the command has a JSON form)."""
    parser.add_argument(
        "--api-url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="base URL of the running API (default: $IOP_API_URL, else http://API_HOST:API_PORT from settings)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help=f"give up waiting for the API after this long (default: {DEFAULT_TIMEOUT_S:g}; connecting: at most 5)",
    )
    if json_help:
        parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=json_help)


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def time_arg(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time (HH:MM): {text!r}") from None


def level_arg(text: str) -> dict[str, str]:
    parts = text.split(":")
    if len(parts) != 3 or parts[0] not in ("ASAM", "LOCUS") or not all(parts):
        raise argparse.ArgumentTypeError(
            f"expected FRAMEWORK:EDITION:LEVEL with ASAM or LOCUS, e.g. ASAM:3:2.5: {text!r}"
        )
    return {"framework": parts[0], "edition": parts[1], "level": parts[2]}


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


def heap_size(text: str) -> str:
    """A JVM memory size as -Xmx takes it: digits and a unit (k, m, g)."""
    if not re.fullmatch(r"[1-9]\d*[kmgKMG]", text):
        raise argparse.ArgumentTypeError(f"expected a size such as 2g or 1536m, not {text!r}")
    return text
