"""The shared intake rate limit's cost per intake request: ``IntakeRates.retry_after`` (a thread hop and one
upsert in the service database) on SQLite and on PostgreSQL (a cluster of its own on loopback), against the
floor of any shared state there, ``SELECT 1`` through the same thread hop and engine, alternating call by
call in the same run; alone and with 16 requests at once over 4 sources.

    .venv/bin/python -m bench.intake_rates [--calls 2000]

Prints a table and writes bench/results/intake_rates.json.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Engine, text

from bench.intake import distribution
from bench.report import machine, write_result
from referral_service.config.limits import IntakeLimits
from referral_service.devstack.postgres_server import reachable_folder, start_postgres
from referral_service.store.database import open_database, sqlite_url
from referral_service.store.intake_rates import IntakeRates

CONCURRENT = 16
SOURCES = 4
NEVER_THROTTLED = IntakeLimits(per_source_per_minute=10_000_000, burst=10_000_000)  # every call takes a token


def _select_one(engine: Engine) -> None:
    with engine.connect() as db:
        db.execute(text("SELECT 1"))


async def _timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def _measure(engine: Engine, calls: int, concurrency: int) -> dict[str, dict[str, float]]:
    rates = IntakeRates(engine, NEVER_THROTTLED)
    samples: dict[str, list[float]] = {"retry_after": [], "select_1": []}

    async def client(n: int) -> None:
        for i in range(calls // concurrency):
            source = f"source-{(n + i) % SOURCES}"
            samples["retry_after"].append(await _timed(lambda: rates.retry_after(source)))  # noqa: B023
            samples["select_1"].append(await _timed(lambda: asyncio.to_thread(_select_one, engine)))

    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return {name: distribution(values) for name, values in samples.items()}


async def measure(urls: dict[str, str], calls: int) -> dict[str, Any]:
    rows = []
    for database, url in urls.items():
        engine = open_database(url)
        for concurrency in (1, CONCURRENT):
            await _measure(engine, calls // 10, concurrency)  # warm: connections, the rows of each source
            figures = await _measure(engine, calls, concurrency)
            rows.append({"database": database, "concurrent": concurrency, **figures})
        engine.dispose()
    return {"calls": calls, "rows": rows}


def _print(result: dict[str, Any]) -> None:
    print("| database | at once | retry_after p50 / p95 ms | SELECT 1 p50 / p95 ms | added p50 ms |")
    print("|---|---:|---:|---:|---:|")
    for row in result["rows"]:
        limit, floor = row["retry_after"], row["select_1"]
        print(
            f"| {row['database']} | {row['concurrent']} | {limit['p50_ms']:.2f} / {limit['p95_ms']:.2f} "
            f"| {floor['p50_ms']:.2f} / {floor['p95_ms']:.2f} | {limit['p50_ms'] - floor['p50_ms']:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    folder = reachable_folder("iop-bench-rates-")
    postgres = start_postgres(folder / "data")
    try:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        postgres.create_database(name)
        urls = {"sqlite": sqlite_url(folder / "service.sqlite"), "postgresql": postgres.url(name)}
        result = asyncio.run(measure(urls, args.calls))
    finally:
        postgres.stop()
    _print(result)
    write_result("intake_rates", result | {"machine": machine()})


if __name__ == "__main__":
    main()
