"""HAPI under a burst: N conditional creates of a Task (validated, referencing a Patient and a ServiceRequest)
sent all at once, against HAPI started with each heap ceiling in turn; the first heap is the baseline.

    .venv/bin/python -m bench.hapi_burst [--writes 300] [--heaps 1g 2g] [--postgres]

Per heap: how many writes got 201, the burst's wall time, whether HAPI still answers afterwards, its peak RSS
(the kernel's VmHWM) and the heap's peak occupancy (the largest "before" of any collection in the JVM's GC log).
The database is in-memory H2, or with ``--postgres`` a PostgreSQL cluster of its own in a temporary folder.
Prints a table and writes bench/results/hapi_burst.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.report import RESULTS, machine, write_result
from referral_service.devstack import hapi_server
from referral_service.devstack.postgres_server import start_postgres
from referral_service.devstack.process import free_port

STARTUP_TIMEOUT_S = 600.0
GC_LINE = re.compile(r"(\d+)M->(\d+)M\(\d+M\)")
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def _task(index: int, patient: str, service_request: str) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "identifier": [{"system": "urn:iop:bench:burst", "value": f"receipt-{index}"}],
        "basedOn": [{"reference": service_request}],
        "status": "requested",
        "intent": "order",
        "businessStatus": {"text": "Referral received"},
        "description": "Receipt of a referral to the intensive outpatient program",
        "focus": {"reference": service_request},
        "for": {"reference": patient},
        "authoredOn": "2026-12-01T09:00:00Z",
    }


async def _seed(client: httpx.AsyncClient) -> tuple[str, str]:
    patient = (
        await client.post("/Patient", json={"resourceType": "Patient", "active": True}, headers=FHIR_JSON)
    ).json()
    request = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient['id']}"},
    }
    created = (await client.post("/ServiceRequest", json=request, headers=FHIR_JSON)).json()
    return f"Patient/{patient['id']}", f"ServiceRequest/{created['id']}"


async def _burst(base_url: str, writes: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=writes, max_keepalive_connections=writes)
    async with httpx.AsyncClient(base_url=base_url, timeout=180, limits=limits) as client:
        patient, service_request = await _seed(client)

        async def create(index: int) -> str:
            headers = {**FHIR_JSON, "If-None-Exist": f"identifier=urn:iop:bench:burst|receipt-{index}"}
            try:
                response = await client.post("/Task", json=_task(index, patient, service_request), headers=headers)
            except httpx.HTTPError as error:
                return type(error).__name__
            return str(response.status_code)

        start = time.perf_counter()
        outcomes = await asyncio.gather(*(create(i) for i in range(writes)))
        seconds = time.perf_counter() - start
    return {"outcomes": dict(Counter(outcomes)), "seconds": round(seconds, 1)}


def _peak_rss_mb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    [kilobytes] = re.findall(r"VmHWM:\s+(\d+) kB", status)
    return int(kilobytes) // 1024


def _peak_heap_mb(gc_log: Path) -> int:
    return max((int(before) for before, _ in GC_LINE.findall(gc_log.read_text())), default=0)


@contextlib.contextmanager
def _gc_logged_to(gc_log: Path) -> Iterator[None]:
    """The JVM reads JAVA_TOOL_OPTIONS from the environment our child inherits; spawn() knows nothing of it."""
    previous = os.environ.get("JAVA_TOOL_OPTIONS")
    os.environ["JAVA_TOOL_OPTIONS"] = f"-Xlog:gc:file={gc_log}"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["JAVA_TOOL_OPTIONS"]
        else:
            os.environ["JAVA_TOOL_OPTIONS"] = previous


def measure_heap(heap: str, writes: int, folder: Path, database: hapi_server.HapiDatabase | None) -> dict[str, Any]:
    jar = hapi_server.build_jar()
    port, gc_log = free_port(), folder / f"gc-{heap}.log"
    with _gc_logged_to(gc_log):
        hapi = hapi_server.spawn(
            jar=jar, port=port, log_path=RESULTS / "logs" / f"hapi-burst-{heap}.log", database=database, heap=heap
        )
    url = hapi_server.base_url(port)
    try:
        started = time.perf_counter()
        hapi.wait_ready(lambda: hapi_server.metadata_ready(url), STARTUP_TIMEOUT_S)
        result = {"heap": heap, "start_seconds": round(time.perf_counter() - started, 1)}
        result |= asyncio.run(_burst(url, writes))
        result["answers_after"] = hapi_server.metadata_ready(url)
        result["peak_rss_mb"] = _peak_rss_mb(hapi.process.pid)
        result["peak_heap_mb"] = _peak_heap_mb(gc_log)
        return result
    finally:
        hapi.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--heaps", nargs="+", default=["1g", hapi_server.DEFAULT_HEAP])
    parser.add_argument("--postgres", action="store_true", help="HAPI on PostgreSQL instead of in-memory H2")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hapi-burst-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)  # the cluster's owner (``postgres`` under root) must reach its data folder
        postgres = start_postgres(folder / "pg") if args.postgres else None
        try:
            for number, heap in enumerate(args.heaps):
                database = None
                if postgres is not None:  # a fresh database per run: each burst meets the same empty tables
                    postgres.create_database(f"hapi_{number}")
                    database = hapi_server.HapiDatabase.on(postgres, f"hapi_{number}")
                rows.append(measure_heap(heap, args.writes, folder, database))
        finally:
            if postgres is not None:
                postgres.stop()
    print(f"{args.writes} conditional Task creates at once, HAPI on {'PostgreSQL' if args.postgres else 'H2'}")
    print(f"{'heap':>5} {'start s':>8} {'burst s':>8} {'outcomes':<28} {'answers':>8} {'RSS MB':>7} {'heap MB':>8}")
    for row in rows:
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(row["outcomes"].items()))
        print(
            f"{row['heap']:>5} {row['start_seconds']:>8} {row['seconds']:>8} {outcomes:<28} "
            f"{row['answers_after']!s:>8} {row['peak_rss_mb']:>7} {row['peak_heap_mb']:>8}"
        )
    path = write_result("hapi_burst", {"machine": machine(), "writes": args.writes, "rows": rows})
    print(f"written: {path}")


if __name__ == "__main__":
    main()
