"""Lifecycle throughput (P2): complete 12-week adult programs per second, on the Temporal dev server and HAPI.

Compressed, not time-skipped: each program is a fresh copy of Ada's referral (seeded in HAPI first, one
by one, outside the timing), started as the intake API starts it, accepted, 36 attended group sessions
(three a week for twelve weeks after her hospital discharge), discharged as completed, and both follow-ups
recorded, each through the workflow's own updates; the program is done when its workflow has closed.
``CONCURRENCY`` programs run at a time, with a real worker in this process writing to HAPI (an EHR client
whose observer counts every write).

Baselines, in the same run with the same concurrency:
- Temporal: a trivial workflow running one no-op local activity (bench/trivial.py; the referral workflow tries
  each EHR write as one since issue 18), completions per second; divided by the writes one program makes, the
  rate Temporal alone would allow.
- HAPI: the same number of conditional-update writes the programs made (Encounters, new identifiers),
  sent straight to HAPI; divided by the writes per program, the rate HAPI alone would allow.
Goal (issue 18): programs per second at least 0.9x the lower of the two.

Each bound is one part alone with the machine's cores to itself, yet a program needs both parts at once on the
same cores. So the CPU seconds of each process (this one: the worker and the bench driving it; HAPI; Temporal)
are read around each timed run, and a third bound drawn from them: the cores divided by what the two baselines'
work for one program costs (HAPI's writes plus Temporal's local-activity workflows), the rate the machine would
allow a program that cost no more CPU than the parts it drives.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any

from temporalio.worker import Worker

from bench.intake import seeded
from bench.servers import Servers
from bench.trivial import TrivialWorkflow, nothing
from fhir_mappings import encounter
from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from referral_service.domain.discharge import Discharge, DischargeReason
from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import Program
from referral_service.domain.program_day import Today
from referral_service.domain.referral import Referral, referral_key
from referral_service.ehr.client import FhirClient, FhirExchange
from referral_service.ehr.source import SourceConfig
from referral_service.programs import load_program
from referral_service.worker import create_worker
from tests.conftest import HAPI_SOURCE_ID
from tests.workflows.stories import session, wait_for_phase
from workflows.referral import ReferralWorkflow
from workflows.referral_types import DischargeInput, FollowUpInput, ScreeningDecisionInput, StartReferralInput

CONCURRENCY = 8
SESSION_DAYS = [7 * week + day for week in range(12) for day in (1, 3, 5)]  # 36, days 1 to 82
PROGRAM_DISCHARGE_DAY = 84
GOAL = ">= 0.9x the lower baseline"


def story_start(program: Program) -> date:
    """The hospital discharge of a bench referral: its program discharge (day 84) falls on today in the program's
    zone, so no session or discharge is dated after the workflow's today (the clinical date rules)."""
    return Today.at(datetime.now(UTC), program.time_zone).day - timedelta(days=PROGRAM_DISCHARGE_DAY)


async def run_program(servers: Servers, program: Program, queue: str, referral: Referral) -> None:
    """A referral seeded with ``story_start``: accepted with its intake on day 1 (entered late, as the sessions
    are), 36 sessions, discharged today, both follow-ups."""
    key = referral_key(referral.source_id, referral.placer_identifier)
    start = StartReferralInput(key=key, referral=referral, program=program, received_at=datetime.now(UTC))
    handle = await servers.temporal.client.start_workflow(ReferralWorkflow.run, start, id=key, task_queue=queue)
    discharged = discharged_on(referral)
    intake = datetime.combine(discharged + timedelta(days=1), clock(12), UTC)
    accept = ScreeningDecisionInput(decision="accept", track_id="adult-mh", intake_at=intake)
    await handle.execute_update(ReferralWorkflow.decide, accept)
    for day in SESSION_DAYS:
        await handle.execute_update(ReferralWorkflow.record_session, session(day, after=discharged))
    completed = Discharge(reason=DischargeReason.COMPLETED, date=discharged + timedelta(days=PROGRAM_DISCHARGE_DAY))
    await handle.execute_update(ReferralWorkflow.discharge, DischargeInput(discharge=completed))
    await wait_for_phase(handle, Phase.AFTERCARE)  # follow-ups are taken in aftercare only
    for checkpoint in program.deadlines.follow_up_days:
        await handle.execute_update(ReferralWorkflow.record_follow_up, FollowUpInput(day=checkpoint, reached=True))
    state = await handle.result()
    if state.phase != Phase.CLOSED:
        raise RuntimeError(f"a program ended in phase {state.phase}, not closed")


def discharged_on(referral: Referral) -> date:
    discharge = referral.discharge
    if discharge is None or discharge.discharge_date is None:
        raise RuntimeError("the fixture's referral names no hospital discharge date")
    return discharge.discharge_date


@dataclass(frozen=True)
class Timed:
    """A timed run: its seconds and the CPU seconds each process used meanwhile (``Servers.cpu_seconds``)."""

    seconds: float
    cpu_s: dict[str, float]

    def rate(self, count: int) -> float:
        return count / self.seconds

    def cpu_per(self, count: float) -> dict[str, float]:
        return {process: used / count for process, used in self.cpu_s.items()}


async def _in_batches(servers: Servers, count: int, one: Callable[[], Awaitable[None]]) -> Timed:
    """Run ``one()`` ``count`` times, ``CONCURRENCY`` at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def limited() -> None:
        async with gate:
            await one()

    cpu, started = servers.cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(limited() for _ in range(count)))
    seconds, used = time.perf_counter() - started, servers.cpu_seconds()
    return Timed(seconds, {process: used[process] - cpu[process] for process in used})


async def programs_run(servers: Servers, count: int) -> tuple[Timed, Counter[str]]:
    program = load_program()
    queue = f"bench-lifecycle-{uuid.uuid4().hex[:8]}"
    writes: Counter[str] = Counter()

    def counted(exchange: FhirExchange) -> None:
        if exchange.method in ("PUT", "POST"):
            writes[exchange.method] += 1

    source = SourceConfig(id=HAPI_SOURCE_ID, base_url=servers.hapi_base_url, timeout_seconds=300)
    # Seeded one by one, outside the timing: concurrent conditional creates of the same referrer conflict.
    referrals = iter([(await seeded(servers, program, discharged_on=story_start(program)))[1] for _ in range(count)])
    async with (
        FhirClient(source, observer=counted) as ehr,
        create_worker(servers.temporal.client, queue, {HAPI_SOURCE_ID: ehr}),
    ):
        done = 0

        async def one() -> None:
            nonlocal done
            await run_program(servers, program, queue, next(referrals))
            done += 1
            print(f"  lifecycle: {done}/{count} programs closed", file=sys.stderr, flush=True)

        return await _in_batches(servers, count, one), writes


async def trivial_run(servers: Servers, count: int) -> Timed:
    client = servers.temporal.client
    queue = f"bench-trivial-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[TrivialWorkflow], activities=[nothing]):

        async def one() -> None:
            await client.execute_workflow(TrivialWorkflow.run, id=f"trivial-{uuid.uuid4().hex}", task_queue=queue)

        return await _in_batches(servers, count, one)


async def hapi_writes_run(servers: Servers, count: int) -> Timed:
    """Conditional-update writes of new session Encounters for one seeded referral, straight to HAPI."""
    program = load_program()
    _, referral = await seeded(servers, program)
    discharged = discharged_on(referral)
    numbers = iter(range(count))

    async def one() -> None:
        n = next(numbers)
        key = f"bench-direct-{uuid.uuid4().hex}/encounter/{n}"
        attended = session(1 + n % 80, after=discharged).session
        body = encounter.session_encounter(referral, attended, key=key, organization=program.organization)
        await servers.hapi.update_conditional(body, f"identifier={RESOURCE_KEY_SYSTEM}|{key}")

    return await _in_batches(servers, count, one)


async def measure(servers: Servers, programs: int, trivial_workflows: int) -> dict[str, Any]:
    service, writes = await programs_run(servers, programs)
    write_count = sum(writes.values())
    writes_per_program = write_count / programs
    activities_per_program = writes_per_program  # one EHR write per local activity (retries aside)
    trivial = await trivial_run(servers, trivial_workflows)
    hapi = await hapi_writes_run(servers, write_count)
    ours = service.rate(programs)
    temporal_bound = trivial.rate(trivial_workflows) / activities_per_program
    hapi_bound = hapi.rate(write_count) / writes_per_program
    bound = min(temporal_bound, hapi_bound)
    # Per program: what the program took of each process, and what its writes cost the two baselines.
    cpu = {
        "service": service.cpu_per(programs),
        "temporal_baseline": trivial.cpu_per(trivial_workflows / activities_per_program),
        "hapi_baseline": hapi.cpu_per(write_count / writes_per_program),
    }
    cores = len(os.sched_getaffinity(0))
    baseline_cpu = sum(cpu["temporal_baseline"].values()) + sum(cpu["hapi_baseline"].values())
    return {
        "figure": "P2 lifecycle throughput",
        "programs": programs,
        "concurrency": CONCURRENCY,
        "programs_per_s": ours,
        "writes_per_program": writes_per_program,
        "trivial_workflows": trivial_workflows,
        "trivial_workflows_per_s": trivial.rate(trivial_workflows),
        "hapi_writes_per_s": hapi.rate(write_count),
        "temporal_bound_programs_per_s": temporal_bound,
        "hapi_bound_programs_per_s": hapi_bound,
        "ratio_to_lower_bound": ours / bound,
        "cpu_s_per_program": cpu,
        "hapi_cpu_counted": "hapi" in cpu["service"],
        "cores": cores,
        "shared_cores_bound_programs_per_s": cores / baseline_cpu,
        "ratio_to_shared_cores_bound": ours * baseline_cpu / cores,
        "goal": GOAL,
        "met": ours / bound >= 0.9,
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"\nP2 lifecycle throughput: {result['programs']} complete 12-week programs, {CONCURRENCY} at a time")
    print(f"  programs/s                               {result['programs_per_s']:>8.3f}")
    print(f"  EHR writes per program                   {result['writes_per_program']:>8.1f}")
    print(f"  trivial 1-local-activity workflows/s     {result['trivial_workflows_per_s']:>8.1f}")
    print(f"  HAPI direct conditional writes/s         {result['hapi_writes_per_s']:>8.1f}")
    print(f"  bound from Temporal (programs/s)         {result['temporal_bound_programs_per_s']:>8.3f}")
    print(f"  bound from HAPI (programs/s)             {result['hapi_bound_programs_per_s']:>8.3f}")
    print(f"  ratio to the lower bound                 {result['ratio_to_lower_bound']:>8.2f}  (goal {GOAL})")
    cpu = result["cpu_s_per_program"]
    processes = list(cpu["service"])
    print(f"  CPU seconds per program   {''.join(f'{p:>10}' for p in processes)}{'total':>10}")
    for label, row in (
        ("the service", cpu["service"]),
        ("Temporal baseline", cpu["temporal_baseline"]),
        ("HAPI baseline", cpu["hapi_baseline"]),
    ):
        print(f"    {label:<22}{''.join(f'{row[p]:>10.2f}' for p in processes)}{sum(row.values()):>10.2f}")
    both = "both baselines' CPU" if result["hapi_cpu_counted"] else "both baselines' CPU (HAPI's not counted)"
    print(
        f"  bound from {result['cores']} cores / {both} {result['shared_cores_bound_programs_per_s']:>6.3f}"
        f"  (ratio {result['ratio_to_shared_cores_bound']:.2f})"
    )
