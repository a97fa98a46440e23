"""``referral-service``: the parser (each command's options beside its handler, in its own module) and the entry
point, which runs a server command with the settings loaded or a client command against the API."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import textwrap
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from referral_service.cli import listing, referral_commands, reports, servers, submit
from referral_service.cli.api_client import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    ApiClient,
    CliError,
    api_url,
)
from referral_service.cli.options import DEFAULT_TIMEOUT_S, add_client_options
from referral_service.cli.servers import SERVER_LIFETIME

if TYPE_CHECKING:
    from referral_service.config import Settings

EXIT_FAILURE = EXIT_REFUSED
EPILOG = f"""\
client commands (submit, list, show, attend, team, discharge, retry-writes, measures, audit) talk to a running
API over HTTP:
  --api-url, else $IOP_API_URL, else http://API_HOST:API_PORT from the settings.
  --api-url, --timeout and --json go before or after the command.
  They send the bearer token in $IOP_API_TOKEN to an API that requires sign-in.
  They never print a patient's name, birth date or identifiers.

{textwrap.fill("server commands (dev, worker, api): " + SERVER_LIFETIME, 110)}

exit codes:
  {EXIT_OK}  ok
  {EXIT_REFUSED}  the server refused the request (4xx), or there is no such referral
  {EXIT_USAGE}  usage error, unusable file or settings
  {EXIT_UNREACHABLE}  the API is unreachable or unavailable (connection failed, timed out, 5xx)
"""


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="referral-service",
        description="IOP referral and care-coordination service (FHIR R4 + Temporal).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="TOML settings file (default: $IOP_CONFIG, else built-in)")
    add_client_options(parser, json_help="client commands: print the result as JSON")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (servers, submit, listing, referral_commands, reports):
        module.add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point. Leaves with ``os._exit`` so the Temporal runtime cannot turn an exit code into an abort."""
    args = parser().parse_args(argv)
    code = _run(args) if hasattr(args, "serve") else _run_client(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run(args: argparse.Namespace) -> int:
    # Imported here: settings pull in the Temporal SDK, which client commands do not need to start fast.
    from referral_service import logging as service_logging
    from referral_service.config import load_settings
    from referral_service.lifetime import EXIT_FAILED, StartupError

    overrides = {"state_dir": args.state_dir} if getattr(args, "state_dir", None) else {}
    try:
        settings = load_settings(args.config, **overrides)
    except (ValueError, OSError) as error:
        print(f"referral-service: invalid settings: {error}", file=sys.stderr)
        return EXIT_USAGE
    service_logging.configure(settings.log_format)
    log = service_logging.get_logger()
    serve: Callable[[argparse.Namespace, Settings], Coroutine[None, None, int]] = args.serve
    try:
        return asyncio.run(serve(args, settings))
    except KeyboardInterrupt:
        return EXIT_OK
    except StartupError as error:  # one line saying why, and a non-zero exit its supervisor acts on
        log.error(f"cannot start: {error}")
        return EXIT_FAILED
    except Exception:  # a crash exits too (main's os._exit), rather than lingering on the SDK's threads
        log.exception("stopped on an error")
        return EXIT_FAILED


def _run_client(args: argparse.Namespace) -> int:
    """A client command against the API; its ``CliError`` is printed (to stderr) with the exit code it names."""
    try:
        url = api_url(getattr(args, "api_url", None), lambda: _api_address(args.config))
        timeout = getattr(args, "timeout", DEFAULT_TIMEOUT_S)
        if timeout <= 0:
            raise CliError("--timeout must be positive", EXIT_USAGE)
        with ApiClient(url, timeout) as client:
            handler: Callable[[argparse.Namespace, ApiClient], int] = args.handler
            return handler(args, client)
    except CliError as error:
        print(f"referral-service {args.command}: {error}", file=sys.stderr)
        for line in error.details:
            print(f"  {line}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        return EXIT_FAILURE


def _api_address(config: Path | None) -> tuple[str, int]:
    from referral_service.config import load_settings

    try:
        settings = load_settings(config)
    except (ValueError, OSError) as error:
        raise CliError(f"invalid settings: {error}", EXIT_USAGE) from None
    return settings.api_host, settings.api_port
