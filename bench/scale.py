"""Scale (P3): referrals open at once in treatment on one worker and the Temporal dev server.

    .venv/bin/python -m bench --only scale [--open-levels 1000 3000 10000]

At each level (1,000, then 3,000, then 10,000 open at once) the open referrals are ReferralWorkflow
executions resumed in treatment, as continue-as-new leaves a long referral (``StartReferralInput.resume``:
phase in_treatment, a team, the Task in progress): the acceptance writes P1 and P2 measure are not made
again 10,000 times. Each is a copy of Ada's referral, seeded once in HAPI, so every Encounter the sample
writes references a real Patient and ServiceRequest there. One worker in this process holds them, with the
service's own worker settings (``create_worker``).

Then, alternating request by request on randomly chosen open referrals:
- attended: a ``record_session`` update for an attended group session (the workflow writes its Encounter
  to HAPI with a conditional update) until the update's answer;
- excused: the same update for an excused absence (no EHR write): the Temporal round trip alone;
- baseline: the same conditional Encounter PUT sent straight to HAPI with the worker's EHR client.
Worker RSS (this process, which is the worker plus its client) is read after each level.

Besides: one complete 12-week program plus aftercare (as P2 runs it) gives the history size and events per
referral over every run of its continue-as-new chain, and from those a projection for 100,000 open
referrals on a Temporal cluster. On the cluster itself (``--temporal cluster``) it also reads what each step
costs the cluster (bench/cluster_costs.py): PostgreSQL bytes for the full program, per referral opened and
per update, and CPU per update of each Temporal service and of PostgreSQL; the projection is then redone
from those.
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from bench import cluster_costs
from bench.intake import distribution, seeded
from bench.lifecycle import PROGRAM_DISCHARGE_DAY, discharged_on, run_program, story_start
from bench.servers import Servers
from fhir_mappings import encounter
from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from referral_service.domain.attendance import SessionRecord
from referral_service.domain.careteam import assign_team
from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import Program, SessionKind
from referral_service.domain.referral import Referral, referral_key
from referral_service.programs import load_program
from referral_service.worker import create_worker
from tests.conftest import HAPI_SOURCE_ID
from workflows import search_attributes
from workflows.referral import ReferralWorkflow
from workflows.referral_types import RecordSessionInput, ReferralState, StartReferralInput

LEVELS = (1_000, 3_000, 10_000)
QUICK_LEVELS = (200, 500)
ROUND_TRIPS = 200
STARTING_AT_ONCE = 50
TRACK = "adult-mh"
GOAL = "p95 <= 150 ms and RSS <= 1.5 GB at 10,000"
PROJECTED_OPEN = 100_000
WORKER_RSS_BUDGET_MB = 1_500
# What Temporal Cloud bills as an action, read off the history (its pricing page lists these kinds).
ACTION_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "workflow runs (start, continue-as-new)",
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activities",
    EventType.EVENT_TYPE_TIMER_STARTED: "timers",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "signals",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "updates",
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: "search-attribute upserts",
    EventType.EVENT_TYPE_MARKER_RECORDED: "markers (patches)",
}

Handle = WorkflowHandle[ReferralWorkflow, ReferralState]


def rss_mb() -> float:
    """This process's resident set now (Linux /proc), after a collection so garbage does not count."""
    gc.collect()
    [line] = [line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmRSS:")]
    return int(line.split()[1]) / 1024


def in_treatment(key: str, referral: Referral, program: Program, received_at: datetime) -> StartReferralInput:
    """A referral resumed in treatment, as continue-as-new hands it to its next run."""
    team = assign_team(program, TRACK, {})
    state = ReferralState(
        key=key,
        referral=referral,
        program=program,
        received_at=received_at,
        phase=Phase.IN_TREATMENT,
        track_id=TRACK,
        treatment_start=received_at.date(),
        team=team,
        team_history=[team],
        task_status="in-progress",
    )
    return StartReferralInput(key=key, referral=referral, program=program, received_at=received_at, resume=state)


async def open_more(
    client: Client, queue: str, referral: Referral, program: Program, keys: list[str], upto: int
) -> None:
    """Start referrals until ``upto`` are open, then wait until the worker has run each one's first task."""
    received_at = datetime.now(UTC)

    async def start(n: int) -> None:
        key = f"{HAPI_SOURCE_ID}-scale-{n}-{uuid.uuid4().hex[:6]}"
        attributes: list[SearchAttributePair[Any]] = [
            SearchAttributePair(search_attributes.PHASE, Phase.IN_TREATMENT.value),
            SearchAttributePair(search_attributes.TRACK, TRACK),
            SearchAttributePair(search_attributes.SOURCE, HAPI_SOURCE_ID),
            SearchAttributePair(search_attributes.AT_RISK, False),
        ]
        await client.start_workflow(
            ReferralWorkflow.run,
            in_treatment(key, referral, program, received_at),
            id=key,
            task_queue=queue,
            search_attributes=TypedSearchAttributes(attributes),
        )
        keys.append(key)

    began = len(keys)
    for batch_start in range(began, upto, STARTING_AT_ONCE):
        await asyncio.gather(*(start(n) for n in range(batch_start, min(upto, batch_start + STARTING_AT_ONCE))))
        if (batch_start - began) % 1000 == 0:
            print(f"  scale: {batch_start:,}/{upto:,} referrals open", file=sys.stderr, flush=True)
    # The task queue is served roughly in order: once the last ones answer a query, the backlog is gone.
    await asyncio.gather(*(settled(client.get_workflow_handle(key)) for key in keys[-STARTING_AT_ONCE:]))


async def settled(handle: WorkflowHandle[Any, Any]) -> None:
    for _ in range(1200):
        try:
            await handle.query(ReferralWorkflow.snapshot)
            return
        except RPCError:  # its first workflow task has not run yet
            await asyncio.sleep(0.5)
    raise RuntimeError("an open referral's first workflow task did not run within 10 minutes")


class RoundTrips:
    """The three sides of the sample, alternating; session ids and dates are fresh per request."""

    def __init__(self, servers: Servers, referral: Referral, program: Program) -> None:
        self._servers, self._referral, self._program = servers, referral, program
        self._discharged = discharged_on(referral)
        self._n = 0
        self.attended: list[float] = []
        self.excused: list[float] = []
        self.direct: list[float] = []
        self.cpu_per_update: list[float] = []

    def _session(self, *, attended: bool) -> SessionRecord:
        self._n += 1
        return SessionRecord(
            session_id=f"p3-{self._n}-{uuid.uuid4().hex[:6]}",
            date=self._discharged + timedelta(days=1 + self._n % 80),
            kind=SessionKind.GROUP,
            minutes=180,
            attended=attended,
            excused=not attended,
        )

    async def _update(self, handle: Handle, *, attended: bool) -> float:
        update = RecordSessionInput(session=self._session(attended=attended))
        cpu, start = time.process_time(), time.perf_counter()
        await handle.execute_update(ReferralWorkflow.record_session, update)
        self.cpu_per_update.append(time.process_time() - cpu)
        return time.perf_counter() - start

    async def _direct(self) -> float:
        attended = self._session(attended=True)
        key = f"bench-p3-direct-{uuid.uuid4().hex}/encounter/{attended.session_id}"
        body = encounter.session_encounter(self._referral, attended, key=key, organization=self._program.organization)
        start = time.perf_counter()
        await self._servers.hapi.update_conditional(body, f"identifier={RESOURCE_KEY_SYSTEM}|{key}")
        return time.perf_counter() - start

    async def sample(self, client: Client, keys: list[str], count: int) -> None:
        rng = random.Random(len(keys))  # noqa: S311 - a repeatable choice of referrals, not a secret
        for n in range(count + 1):  # the first triple warms up and is not counted
            attended = await self._update(client.get_workflow_handle(rng.choice(keys)), attended=True)
            excused = await self._update(client.get_workflow_handle(rng.choice(keys)), attended=False)
            direct = await self._direct()
            if n:
                self.attended.append(attended)
                self.excused.append(excused)
                self.direct.append(direct)


async def history_of(client: Client, key: str) -> dict[str, Any]:
    """Events, bytes and billable actions over every run of a referral's continue-as-new chain."""
    runs, events, size = 0, 0, 0
    actions: Counter[str] = Counter()
    bytes_by_type: Counter[str] = Counter()
    async for execution in client.list_workflows(f"WorkflowId = '{key}'"):
        history = await client.get_workflow_handle(key, run_id=execution.run_id).fetch_history()
        runs += 1
        events += len(history.events)
        size += sum(event.ByteSize() for event in history.events)
        for event in history.events:
            bytes_by_type[EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").lower()] += event.ByteSize()
            if event.event_type in ACTION_EVENTS:
                actions[ACTION_EVENTS[event.event_type]] += 1
    return {
        "runs": runs,
        "events": events,
        "bytes": size,
        "bytes_by_event_type": dict(bytes_by_type.most_common()),
        "actions": dict(actions),
    }


async def full_program(servers: Servers, program: Program, queue: str) -> dict[str, Any]:
    """One complete 12-week program plus aftercare through the workflow's updates, and its history."""
    _, referral = await seeded(servers, program, discharged_on=story_start(program))
    await run_program(servers, program, queue, referral)
    key = referral_key(referral.source_id, referral.placer_identifier)
    for _ in range(60):  # visibility lists the closed runs a moment later
        found = await history_of(servers.temporal.client, key)
        if found["runs"] and found["events"]:
            return found
        await asyncio.sleep(0.5)
    raise RuntimeError("the program's history is not listed")


def lifetime_of(program: Program) -> int:
    """Days a referral stays open: the program, then aftercare until the last follow-up."""
    return PROGRAM_DISCHARGE_DAY + max(program.deadlines.follow_up_days)


def projection(history: dict[str, Any], levels: list[dict[str, Any]], cache: int, program: Program) -> dict[str, Any]:
    """100,000 open referrals on a cluster, from the per-referral figures measured here."""
    lifetime_days = lifetime_of(program)
    lifetime_s = lifetime_days * 86_400
    actions = sum(history["actions"].values())
    # Memory per referral held in the worker's cache: from the largest level the cache holds whole.
    cached = [row for row in levels if row["open"] <= cache] or levels[:1]
    mb_per_cached = (cached[-1]["rss_mb"] - cached[-1]["rss_before_mb"]) / cached[-1]["open"]
    updates_per_s = PROJECTED_OPEN * history["actions"].get("updates", 0) / lifetime_s
    workers_all_cached = PROJECTED_OPEN * mb_per_cached / WORKER_RSS_BUDGET_MB
    cores_for_updates = updates_per_s * levels[-1]["cpu_ms_per_update"] / 1000
    return {
        "open_referrals": PROJECTED_OPEN,
        "assumed_lifetime_days": lifetime_days,
        "actions_per_referral": actions,
        "actions_per_s": PROJECTED_OPEN * actions / lifetime_s,
        "updates_per_s": updates_per_s,
        "history_storage_gb": PROJECTED_OPEN * history["bytes"] / 1e9,
        "worker_cache_size": cache,
        "worker_mb_per_cached_referral": mb_per_cached,
        "workers_to_cache_every_open_referral": math.ceil(workers_all_cached),
        "worker_cores_for_updates": cores_for_updates,
    }


async def measure(servers: Servers, levels: tuple[int, ...], round_trips: int) -> dict[str, Any]:
    program = load_program()
    client = servers.temporal.client
    queue = f"bench-scale-{uuid.uuid4().hex[:8]}"
    _, referral = await seeded(servers, program, discharged_on=story_start(program))  # sessions in the past
    trips = RoundTrips(servers, referral, program)
    keys: list[str] = []
    rows: list[dict[str, Any]] = []
    cluster = servers.cluster
    costs: dict[str, Any] = {}
    async with create_worker(client, queue, {HAPI_SOURCE_ID: servers.hapi}) as worker:
        cache = int(worker.config().get("max_cached_workflows") or 0)
        before = await asyncio.to_thread(cluster.read) if cluster else None
        history = await full_program(servers, program, queue)
        if cluster and before:
            costs["cluster_full_program"] = cluster_costs.per_unit(before, await asyncio.to_thread(cluster.read), 1)
        rss_before = rss_mb()
        for level in levels:
            opened_from, before = len(keys), await asyncio.to_thread(cluster.read) if cluster else None
            started = time.perf_counter()
            await open_more(client, queue, referral, program, keys, level)
            opened_s = time.perf_counter() - started
            opened = await asyncio.to_thread(cluster.read) if cluster else None
            trips.attended, trips.excused, trips.direct, trips.cpu_per_update = [], [], [], []
            await trips.sample(client, keys, round_trips)
            if cluster and before and opened:
                per_referral = cluster_costs.per_unit(before, opened, level - opened_from)
                per_update = cluster_costs.per_unit(
                    opened, await asyncio.to_thread(cluster.read), 2 * (round_trips + 1)
                )
                costs[f"level_{level}"] = {"cluster_per_opened": per_referral, "cluster_per_update": per_update}
            rows.append(
                {
                    **costs.pop(f"level_{level}", {}),
                    "open": level,
                    "seconds_to_open": opened_s,
                    "attended_update": distribution(trips.attended),
                    "excused_update": distribution(trips.excused),
                    "hapi_direct_write": distribution(trips.direct),
                    "cpu_ms_per_update": 1000 * sum(trips.cpu_per_update) / len(trips.cpu_per_update),
                    "rss_before_mb": rss_before,
                    "rss_mb": rss_mb(),
                }
            )
            print_level(rows[-1])
    top = rows[-1]
    if cluster:
        full = costs["cluster_full_program"]
        updates = history["actions"].get("updates", 0)
        costs["history_shards"] = cluster.history_shards
        costs["cluster_projection"] = cluster_costs.projection(PROJECTED_OPEN, lifetime_of(program), updates, full, top)
    return {
        **costs,
        "figure": "P3 scale",
        "levels": rows,
        "round_trips_per_level": round_trips,
        "history_full_program": history,
        "projection": projection(history, rows, cache, program),
        "goal": GOAL,
        "met": top["open"] >= 10_000 and top["attended_update"]["p95_ms"] <= 150 and top["rss_mb"] <= 1_536,
        "today": date.today().isoformat(),
    }


def print_level(row: dict[str, Any]) -> None:
    a, e, d = row["attended_update"], row["excused_update"], row["hapi_direct_write"]
    print(
        f"  {row['open']:>6,} open: attended p50/p95 {a['p50_ms']:.0f}/{a['p95_ms']:.0f} ms, excused "
        f"{e['p50_ms']:.0f}/{e['p95_ms']:.0f} ms, HAPI direct {d['p50_ms']:.0f}/{d['p95_ms']:.0f} ms, "
        f"RSS {row['rss_mb']:.0f} MB (opened in {row['seconds_to_open']:.0f} s)",
        file=sys.stderr,
        flush=True,
    )


def print_table(result: dict[str, Any]) -> None:
    print(f"\nP3 scale: {result['round_trips_per_level']} attendance updates per level, one worker (goal {GOAL})")
    print(
        f"  {'open':>7} {'attended p50':>13} {'p95':>6} {'excused p50':>12} {'p95':>6} {'HAPI p50':>9} {'p95':>6}"
        f" {'p95 ratio':>10} {'RSS MB':>8} {'CPU ms/upd':>11}"
    )
    for row in result["levels"]:
        a, e, d = row["attended_update"], row["excused_update"], row["hapi_direct_write"]
        print(
            f"  {row['open']:>7,} {a['p50_ms']:>13.0f} {a['p95_ms']:>6.0f} {e['p50_ms']:>12.0f} {e['p95_ms']:>6.0f}"
            f" {d['p50_ms']:>9.0f} {d['p95_ms']:>6.0f} {a['p95_ms'] / d['p95_ms']:>9.2f}x {row['rss_mb']:>8.0f}"
            f" {row['cpu_ms_per_update']:>11.1f}"
        )
    h, p = result["history_full_program"], result["projection"]
    print(
        f"  one full program plus aftercare: {h['runs']} run(s), {h['events']:,} events, {h['bytes'] / 1024:,.0f} KiB"
        f" of history; actions {h['actions']}"
    )
    heaviest = ", ".join(f"{kind} {size / 1024:,.0f} KiB" for kind, size in list(h["bytes_by_event_type"].items())[:4])
    print(f"  where the history's bytes are: {heaviest}")
    print(
        f"  projected for {p['open_referrals']:,} open: {p['actions_per_s']:.1f} actions/s,"
        f" {p['updates_per_s']:.2f} updates/s ({p['worker_cores_for_updates']:.3f} worker cores),"
        f" {p['history_storage_gb']:.1f} GB of history; {p['worker_mb_per_cached_referral']:.2f} MB per cached"
        f" referral: {p['workers_to_cache_every_open_referral']} workers of {WORKER_RSS_BUDGET_MB:,} MB keep every"
        f" one cached (the worker caches {p['worker_cache_size']:,} by default)"
    )
    if "cluster_projection" in result:
        cluster_costs.print_costs(result)
