"""A burst on the embedded stack (P8): referrals posted by concurrent clients to ``referral-service dev`` (its API,
worker, Temporal dev server and HAPI, supervised), timed until every one is acknowledged and until every receipt
Task is in the EHR (counted in HAPI by business identifier), against HAPI taking the same Task writes alone through
an EHR client with the same call limits as the stack's source; HAPI's /metadata is probed throughout, its RSS and
Java heap sampled.

    .venv/bin/python -m bench.burst [--referrals 1000] [--clients 20]

Each referral is a fresh copy of Ada's transaction Bundle, seeded in HAPI first as the hospital's EHR holds it
(outside the timing). Writes bench/results/burst.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.intake import distribution
from bench.report import RESULTS, machine, write_result
from fhir_mappings import task
from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from fhir_mappings.referral_in import referral_from_fhir
from referral_service.config.sources import SourceSettings
from referral_service.devstack.process import ManagedProcess, free_port
from referral_service.devstack.stack import LOCAL_SOURCE_ID
from referral_service.domain.referral import ResourceRef, referral_key
from referral_service.ehr.client import FhirClient
from referral_service.ehr.errors import TransientError
from referral_service.programs import load_program
from tests.referrals import referral_bundle

COMMAND = Path(sys.executable).parent / "referral-service"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
READY_S = 900.0
INTAKE_REFUSALS: list[int] = []  # the intake's 429s during the burst


class Watch:
    """HAPI while the burst runs: /metadata every second (each answer's time, or the failure), RSS and heap."""

    def __init__(self, hapi_base_url: str, state_dir: Path) -> None:
        self.url, self.state_dir = f"{hapi_base_url}/metadata", state_dir
        self.probes = self.failures = 0
        self.slowest_s = 0.0
        self.peak_rss_mb = self.peak_heap_mb = 0.0

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            while True:
                started = time.perf_counter()
                try:
                    (await http.get(self.url)).raise_for_status()
                except httpx.HTTPError:
                    self.failures += 1
                self.probes += 1
                self.slowest_s = max(self.slowest_s, time.perf_counter() - started)
                await asyncio.to_thread(self._sample_memory)
                await asyncio.sleep(1)

    def _sample_memory(self) -> None:
        pid = self.hapi_pid()
        if pid is None:
            return
        status = Path(f"/proc/{pid}/status").read_text()
        rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        self.peak_rss_mb = max(self.peak_rss_mb, rss_kb / 1024)
        jstat = shutil.which("jstat") or "/usr/bin/jstat"  # the JDK's, beside the java that runs HAPI
        done = subprocess.run([jstat, "-gc", str(pid)], capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode == 0:
            header, values = done.stdout.split("\n")[:2]
            gc = dict(zip(header.split(), values.split(), strict=True))  # "-" for collectors not in use
            used_kb = sum(float(gc[column]) for column in ("S0U", "S1U", "EU", "OU"))
            self.peak_heap_mb = max(self.peak_heap_mb, used_kb / 1024)

    def hapi_pid(self) -> int | None:
        """The stack's HAPI: the JVM whose command line names this run's HAPI database."""
        marker = str(self.state_dir / "hapi-db")
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    return int(entry.name)
        return None

    def report(self) -> dict[str, Any]:
        return {
            "metadata_probes": self.probes,
            "metadata_failures": self.failures,
            "metadata_slowest_ms": self.slowest_s * 1000,
            "hapi_peak_rss_mb": self.peak_rss_mb,
            "hapi_peak_heap_used_mb": self.peak_heap_mb,
        }


@contextlib.asynccontextmanager
async def embedded_stack(state_dir: Path) -> AsyncIterator[tuple[str, str]]:
    """``referral-service dev`` on free ports with its state in ``state_dir``: (API URL, HAPI base URL)."""
    api, hapi = free_port(), free_port()
    argv = [str(COMMAND), "dev", "--api-port", str(api), "--hapi-port", str(hapi)]
    argv += ["--temporal-port", str(free_port()), "--ui-port", str(free_port())]
    env = {"IOP_STATE_DIR": str(state_dir), "IOP_LOG_FORMAT": "json"}
    stack = await asyncio.to_thread(ManagedProcess.start, "referral-service dev", argv, RESULTS / "logs/burst.log", env)
    api_url = f"http://127.0.0.1:{api}"
    try:
        await until(lambda: _answers(f"{api_url}/readyz"), READY_S, "the embedded stack ready")
        yield api_url, f"http://127.0.0.1:{hapi}/fhir"
    finally:
        await asyncio.to_thread(stack.stop, 120)  # SIGTERM: the stack stops its own servers


async def _answers(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            return (await http.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def until(probe: Callable[[], Awaitable[bool]], patience_s: float, what: str) -> None:
    deadline = time.monotonic() + patience_s
    while not await probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} after {patience_s:.0f}s")
        await asyncio.sleep(1)


async def in_parallel(items: list[Any], clients: int, send: Callable[[Any], Awaitable[float]]) -> list[float]:
    """``send`` each item, ``clients`` at a time; each one's latency."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    latencies: list[float] = []

    async def client() -> None:
        while not queue.empty():
            latencies.append(await send(queue.get_nowait()))

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


async def measure(referrals: int, clients: int) -> dict[str, Any]:
    program = load_program()
    state_dir = Path(tempfile.mkdtemp(prefix="iop-bench-burst-"))
    bundles = [referral_bundle("ada-testpatient-adult-inpatient") for _ in range(referrals)]
    async with embedded_stack(state_dir) as (api_url, hapi_base_url):
        source = SourceSettings(id=LOCAL_SOURCE_ID, base_url=hapi_base_url, timeout_seconds=300)
        async with FhirClient(source.connection()) as ehr, httpx.AsyncClient(base_url=api_url, timeout=300) as api:
            print(f"  burst: seeding {referrals} referrals in HAPI", file=sys.stderr, flush=True)
            await in_parallel(bundles, 1, lambda bundle: _timed(_seed(ehr, bundle)))
            watch = Watch(hapi_base_url, state_dir)
            watching = asyncio.create_task(watch.run())
            started = time.perf_counter()
            acks = await in_parallel(bundles, clients, lambda bundle: _post(api, bundle))
            acknowledged_s = time.perf_counter() - started
            await until(lambda: _tasks_at_least(ehr, referrals), 3600, "every receipt Task in HAPI")
            in_ehr_s = time.perf_counter() - started
            # The baseline: the same receipt Task bodies, under a second identifier, with the source's limits.
            bodies = [_receipt_task(bundle, program.organization) for bundle in bundles]
            started = time.perf_counter()
            await in_parallel(bodies, clients, lambda body: _timed(_put(ehr, body)))
            direct_s = time.perf_counter() - started
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching  # a watch that failed says why here
            tasks = await _tasks(ehr)
    limits = source.limits
    return {
        "figure": "P8 burst on the embedded stack",
        "referrals": referrals,
        "clients": clients,
        "source_limits": limits.model_dump(),
        "acknowledged_s": acknowledged_s,
        "ack_latency": distribution(acks),
        "intake_429s": len(INTAKE_REFUSALS),
        "all_receipt_tasks_in_ehr_s": in_ehr_s,
        "hapi_direct_same_task_writes_s": direct_s,
        "tasks_in_ehr_after_both": tasks,  # every referral's receipt Task once, and the baseline's
        "ratio": in_ehr_s / direct_s,
        **watch.report(),
    }


async def _seed(ehr: FhirClient, bundle: dict[str, Any]) -> None:
    """One referral as the hospital's EHR holds it; HAPI on its H2 file answers an occasional 500 under load."""
    for attempt in range(5):
        try:
            await ehr.transaction(bundle)
            return
        except TransientError:
            if attempt == 4:
                raise
            await asyncio.sleep(2)


async def _timed(work: Awaitable[Any]) -> float:
    started = time.perf_counter()
    await work
    return time.perf_counter() - started


async def _post(api: httpx.AsyncClient, bundle: dict[str, Any]) -> float:
    """``POST /fhir`` until acknowledged, waiting out the intake's ``429``s as a hospital's sender would."""
    started = time.perf_counter()
    while (
        answer := await api.post("/fhir", content=json.dumps(bundle).encode(), headers=FHIR_JSON)
    ).status_code == 429:
        INTAKE_REFUSALS.append(1)
        await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
    answer.raise_for_status()
    return time.perf_counter() - started


async def _tasks(ehr: FhirClient) -> int:
    """Tasks in HAPI with the service's business identifier system: the receipts (and then the baseline's)."""
    async for page in ehr.search_pages("Task", {"identifier": f"{RESOURCE_KEY_SYSTEM}|", "_summary": "count"}):
        return int(page.get("total", 0))
    return 0


async def _tasks_at_least(ehr: FhirClient, count: int) -> bool:
    return await _tasks(ehr) >= count


def _receipt_task(bundle: dict[str, Any], organization: ResourceRef) -> dict[str, Any]:
    referral = referral_from_fhir(bundle, source_id=LOCAL_SOURCE_ID, program_org=organization)
    now = datetime.now(UTC)
    key = f"baseline-{referral_key(LOCAL_SOURCE_ID, referral.placer_identifier)}/task"
    return task.referral_task(
        referral,
        key=key,
        owner=organization,
        status="received",
        business_status="created",
        outputs=[],
        authored_on=now,
        last_modified=now,
    )


async def _put(ehr: FhirClient, body: dict[str, Any]) -> None:
    key = next(i["value"] for i in body["identifier"] if i["system"] == RESOURCE_KEY_SYSTEM)
    await ehr.update_conditional(body, f"identifier={RESOURCE_KEY_SYSTEM}|{key}")


def print_table(result: dict[str, Any]) -> None:
    limits = result["source_limits"]
    print(
        f"P8 burst: {result['referrals']} referrals from {result['clients']} clients to the embedded stack "
        f"(EHR limits: {limits['max_in_flight']} in flight, {limits['per_second']:g}/s)"
    )
    print(
        f"  all acknowledged (201)                    {result['acknowledged_s']:8.1f} s  "
        f"(p50 {result['ack_latency']['p50_ms']:.0f} ms, p95 {result['ack_latency']['p95_ms']:.0f} ms)"
    )
    print(f"  every receipt Task in HAPI                {result['all_receipt_tasks_in_ehr_s']:8.1f} s")
    print(
        f"  HAPI alone, the same Task writes          {result['hapi_direct_same_task_writes_s']:8.1f} s  "
        f"(ratio {result['ratio']:.2f}x)"
    )
    print(
        f"  HAPI /metadata: {result['metadata_failures']} failed of {result['metadata_probes']}, slowest "
        f"{result['metadata_slowest_ms']:.0f} ms; peak RSS {result['hapi_peak_rss_mb']:.0f} MB, "
        f"peak heap used {result['hapi_peak_heap_used_mb']:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--referrals", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    RESULTS.joinpath("logs").mkdir(parents=True, exist_ok=True)
    result = asyncio.run(measure(args.referrals, args.clients))
    print_table(result)
    command = " ".join([".venv/bin/python -m bench.burst", *sys.argv[1:]])
    write_result("burst", {"machine": machine(), "command": command, **result})


if __name__ == "__main__":
    main()
