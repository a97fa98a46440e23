"""What a referral costs the Temporal cluster itself (``--temporal cluster``): bytes in PostgreSQL and CPU seconds
of the cluster's processes, read before and after a measured step, and the projection for 100,000 open
referrals they imply (storage, history shards, workers).

Bytes are ``pg_total_relation_size`` of every table of Temporal's two databases (rows, indexes, TOAST, and
the dead row versions updates leave until vacuum: what the disk holds), grouped as history (the event
history), state (mutable state, current executions, timers, activities, task queues) and visibility.
CPU is user + system time from /proc of each service's process and of PostgreSQL's server and backends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from referral_service.devstack.postgres_server import PostgresServer
from referral_service.devstack.temporal_cluster import TemporalCluster

HISTORY_TABLES = ("history_node", "history_tree")
VISIBILITY_DATABASE = "temporal_visibility"
DATABASES = ("temporal", VISIBILITY_DATABASE)
# Temporal's guidance: a shard can be responsible for tens of thousands of executions; the low end of that.
EXECUTIONS_PER_SHARD = 10_000
# Each shard serialises its persistence writes (history.shardIOConcurrency 1): keep each under half busy.
SHARD_UTILISATION = 0.5
# The shard count is fixed when the cluster is created: room for this much growth.
SHARD_GROWTH = 4
# Attendance is entered after each group, not evenly: a day's updates all within this many hours.
PEAK_HOURS_PER_DAY = 1.0
WORKER_CORE_BUDGET = 0.5  # keep each worker half a core busy at the peak
MIN_WORKERS = 2  # one may be down


@dataclass(frozen=True)
class Reading:
    bytes: dict[str, int]  # group -> bytes
    cpu_s: dict[str, float]  # process -> CPU seconds


@dataclass(frozen=True)
class BenchCluster:
    """The Temporal cluster the benches run on, and the PostgreSQL cluster holding its databases."""

    postgres: PostgresServer
    temporal: TemporalCluster
    history_shards: int

    def read(self) -> Reading:
        groups = {"history": 0, "state": 0, "visibility": 0}
        query = "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' AND relnamespace ="
        query += " 'public'::regnamespace"
        for database in DATABASES:
            for table, size in self.postgres.rows(database, query):
                group = "visibility" if database == VISIBILITY_DATABASE else "state"
                groups["history" if table in HISTORY_TABLES else group] += int(size)
        # "worker" there is Temporal's own worker service (archival, replication), not ours.
        processes = {f"temporal {name}": process for name, process in self.temporal.services.items()}
        processes["postgresql"] = self.postgres.process
        return Reading(groups, {name: process.cpu_seconds() for name, process in processes.items()})


def per_unit(before: Reading, after: Reading, units: int) -> dict[str, Any]:
    """Bytes and CPU milliseconds per unit (a referral opened, an update) between two readings."""
    bytes_per = {group: (after.bytes[group] - before.bytes[group]) / units for group in after.bytes}
    cpu_ms = {name: 1000 * (after.cpu_s[name] - before.cpu_s[name]) / units for name in after.cpu_s}
    return {"bytes": {**bytes_per, "total": sum(bytes_per.values())}, "cpu_ms": cpu_ms}


def _power_of_two_at_least(value: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(value, 1))))


def projection(
    open_referrals: int,
    lifetime_days: int,
    updates_per_referral: int,
    full_program: dict[str, Any],
    top_level: dict[str, Any],
) -> dict[str, Any]:
    """Storage, history shards and workers for ``open_referrals``, from the cluster's own per-referral costs:
    ``full_program`` (bytes of one whole program) and ``top_level`` (CPU per update and the Temporal-only
    round trip at the largest level measured). History is one whole program's. State and visibility are
    the referrals opened at the top level (thousands of rows): one program's state delta is mostly the task
    tables' high-water mark (rows inserted, then deleted), which the cluster reuses and which does not grow
    with the referrals, and its one visibility row is smaller than the page the table grows by."""
    opened = top_level["cluster_per_opened"]["bytes"]
    per_referral = {"history": full_program["bytes"]["history"]}
    per_referral |= {group: opened[group] for group in ("state", "visibility")}
    per_referral["total"] = sum(per_referral.values())
    updates_per_day = open_referrals * updates_per_referral / lifetime_days
    peak_updates_per_s = updates_per_day / (PEAK_HOURS_PER_DAY * 3600)
    cpu_ms = top_level["cluster_per_update"]["cpu_ms"]
    # A shard applies one update at a time: the Temporal-only round trip bounds what it holds the shard for.
    shard_seconds_per_update = top_level["excused_update"]["p50_ms"] / 1000
    shards_for_rate = peak_updates_per_s * shard_seconds_per_update / SHARD_UTILISATION
    shards_for_executions = open_referrals / EXECUTIONS_PER_SHARD
    worker_cores = peak_updates_per_s * top_level["cpu_ms_per_update"] / 1000
    return {
        "open_referrals": open_referrals,
        "storage_gb": {group: open_referrals * size / 1e9 for group, size in per_referral.items()},
        # A whole program's CPU spread over its lifetime: what the cluster spends on average.
        "average_cores": {
            name: open_referrals * ms / 1000 / (lifetime_days * 86_400) for name, ms in full_program["cpu_ms"].items()
        },
        "peak_updates_per_s": peak_updates_per_s,
        "peak_cores": {name: peak_updates_per_s * ms / 1000 for name, ms in cpu_ms.items()},
        "shards_for_rate": shards_for_rate,
        "shards_for_executions": shards_for_executions,
        "history_shards": _power_of_two_at_least(SHARD_GROWTH * max(shards_for_rate, shards_for_executions)),
        "worker_cores_at_peak": worker_cores,
        "workers": max(MIN_WORKERS, math.ceil(worker_cores / WORKER_CORE_BUDGET)),
    }


def print_costs(result: dict[str, Any]) -> None:
    full, p = result["cluster_full_program"], result["cluster_projection"]
    print(
        f"  cluster ({result['history_shards']} history shards), one full program in PostgreSQL (KiB):"
        f" {_kib(full['bytes'])}"
    )
    for row in result["levels"]:
        opened, updated = row["cluster_per_opened"], row["cluster_per_update"]
        cpu = ", ".join(f"{name} {ms:.1f}" for name, ms in updated["cpu_ms"].items())
        print(
            f"  {row['open']:>7,} open: KiB per referral opened {_kib(opened['bytes'])}; per update"
            f" {_kib(updated['bytes'])}; CPU ms per update: {cpu}"
        )
    storage = ", ".join(f"{group} {gb:,.1f}" for group, gb in p["storage_gb"].items())
    cores = ", ".join(f"{name} {c:.2f}" for name, c in p["peak_cores"].items())
    average = sum(p["average_cores"].values())
    print(
        f"  projected for {p['open_referrals']:,} open on the cluster: storage (GB) {storage};"
        f" {average:.3f} cluster cores on average;"
        f" peak {p['peak_updates_per_s']:.1f} updates/s (a day's in {PEAK_HOURS_PER_DAY:g} h), cores at the peak:"
        f" {cores}; shards {p['history_shards']} (rate {p['shards_for_rate']:.2f}, executions"
        f" {p['shards_for_executions']:.0f}, x{SHARD_GROWTH} growth); workers {p['workers']}"
        f" ({p['worker_cores_at_peak']:.2f} cores at the peak)"
    )


def _kib(groups: dict[str, float]) -> str:
    return ", ".join(f"{group} {size / 1024:,.1f}" for group, size in groups.items())
