"""Replay scenarios: the real worker and workflow on a time-skipping Temporal server, writing to a FHIR server.

Each scenario's referral is seeded in the EHR and started as the intake API starts one; its timeline is
driven with the updates and the signal the case-manager API uses, the clock skipping to each event's day.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from referral_service.domain.program import Program
from referral_service.domain.referral import referral_key
from referral_service.ehr.client import FhirClient, FhirExchange
from referral_service.ehr.errors import FhirError
from referral_service.ehr.source import SourceConfig
from referral_service.replay import checks, seeding
from referral_service.replay.clock import skip_time, terminate_when_idle
from referral_service.replay.scenario import (
    Checkpoint,
    Scenario,
    ScenarioError,
)
from referral_service.replay.steps import Handle, Step, describe, send_step, steps
from referral_service.worker import create_worker
from workflows.referral import ReferralWorkflow
from workflows.referral_types import (
    StartReferralInput,
)

# An event the workflow has not answered in this long (wall clock) fails the scenario: the EHR may be
# refusing writes, which the workflow retries for as long as it takes.
EVENT_TIMEOUT_S = 120.0
# Per FHIR request: a test server's first validated transaction can take a while on a busy machine.
REQUEST_TIMEOUT_S = 90.0
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Exchange:
    day: int
    exchange: FhirExchange


@dataclass
class ScenarioResult:
    name: str
    title: str
    file: str
    referral_key: str | None = None
    phase: str | None = None
    problems: list[str] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)  # what the EHR holds at the end

    @property
    def passed(self) -> bool:
        return not self.problems


class _Recorder:
    """Collects every FHIR exchange (the worker's and the replay's own) under the scenario and day it ran in."""

    def __init__(self) -> None:
        self.current: ScenarioResult | None = None
        self.day = 0

    def __call__(self, exchange: FhirExchange) -> None:
        if self.current is not None:
            self.current.exchanges.append(Exchange(self.day, exchange))


async def replay(
    env: WorkflowEnvironment,
    fhir_url: str,
    scenarios: Sequence[tuple[str, Scenario]],
    program: Program,
    *,
    run_id: str,
    progress: Progress,
) -> list[ScenarioResult]:
    """Replay each (file, scenario) in turn with one worker; a result per scenario, failures spelled out."""
    recorder = _Recorder()
    writable = _writable_by_source(scenarios)
    clients = {
        source: FhirClient(
            SourceConfig(id=source, base_url=fhir_url, timeout_seconds=REQUEST_TIMEOUT_S, writable=overrides),
            observer=recorder,
        )
        for source, overrides in writable.items()
    }
    shared = _Shared(env, program, f"replay-{run_id}", run_id, progress, recorder)
    results = []
    try:
        async with create_worker(env.client, shared.queue, clients):
            for file, scenario in scenarios:
                result = ScenarioResult(scenario.name, scenario.title, file)
                recorder.current, recorder.day = result, 0
                progress(f"{scenario.name}: {scenario.title}")
                await _ScenarioRun(shared, clients[scenario.referral.source], scenario, result).run()
                results.append(result)
                progress(f"{scenario.name}: {'passed' if result.passed else 'FAILED'}")
    finally:
        for client in clients.values():
            await client.aclose()
    return results


@dataclass(frozen=True)
class _Shared:
    """What every scenario of one replay run uses."""

    env: WorkflowEnvironment
    program: Program
    queue: str
    run_id: str
    progress: Progress
    recorder: _Recorder


class _ScenarioRun:
    def __init__(self, shared: _Shared, client: FhirClient, scenario: Scenario, result: ScenarioResult) -> None:
        self.env, self.program, self.progress, self.recorder = (
            shared.env,
            shared.program,
            shared.progress,
            shared.recorder,
        )
        self.queue, self.run_id = shared.queue, shared.run_id
        self.client, self.scenario, self.result = client, scenario, result
        self.sessions = [sid for _, sid, _ in scenario.sessions()]
        self.day0 = datetime.min
        self.handle: Handle | None = None

    async def run(self) -> None:
        try:
            await self._start()
            await self._play()
        except (ScenarioError, FhirError) as error:
            self.result.problems.append(f"day {self.recorder.day}: {error}")
        finally:
            await self._stop_if_running()

    async def _start(self) -> None:
        self.day0 = await self.env.get_current_time()
        prepared = seeding.prepare(
            self.scenario.referral, self.program, day0=self.day0, order_suffix=f"{self.scenario.name}-{self.run_id}"
        )
        done = await seeding.seed(self.client, prepared)
        self.progress(f"  day 0  referral seeded in the EHR: {done}")
        referral = prepared.referral
        key = referral_key(referral.source_id, referral.placer_identifier)
        self.result.referral_key = key
        start = StartReferralInput(key=key, referral=referral, program=self.program, received_at=self.day0)
        try:
            self.handle = await self.env.client.start_workflow(
                ReferralWorkflow.run, start, id=key, task_queue=self.queue
            )
        except WorkflowAlreadyStartedError:
            raise ScenarioError(f"referral {key} is already running in this replay (scenario given twice?)") from None
        self.progress(f"  day 0  referral received: {key}")

    async def _play(self) -> None:
        checkpoints = sorted(self.scenario.after, key=lambda point: point.day)
        for day, step in steps(self.scenario):
            while checkpoints and checkpoints[0].day < day:
                point = checkpoints.pop(0)
                await self._check(f"after day {point.day}", point, point.day)
            await self._advance_to(day)
            if not await self._apply(day, step):
                return  # the workflow refused: later events would only pile up errors
        for point in checkpoints:
            await self._check(f"after day {point.day}", point, point.day)
        await self._check("end", self.scenario.end, self.scenario.last_day(), final=True)

    async def _advance_to(self, day: int) -> None:
        """Skip the test server's clock to ``day``; returns once the workflow has done what fell due."""
        self.recorder.day = day
        wait = self.day0 + timedelta(days=day) - await self.env.get_current_time()
        if wait > timedelta(0):
            await skip_time(self.env.client, wait)

    async def _apply(self, day: int, step: Step) -> bool:
        self.progress(f"  day {day:<3} {describe(step)}")
        try:
            assert self.handle is not None
            await asyncio.wait_for(
                send_step(self.handle, self.day0, day, step, zone=self.program.time_zone), EVENT_TIMEOUT_S
            )
        except WorkflowUpdateFailedError as error:
            self.result.problems.append(f"day {day} {step.do}: the workflow refused it: {error.cause}")
            return False
        except RPCError as error:
            self.result.problems.append(f"day {day} {step.do}: the workflow service refused it: {error.message}")
            return False
        except TimeoutError:
            self.result.problems.append(
                f"day {day} {step.do}: no answer within {EVENT_TIMEOUT_S:.0f} s (see the FHIR interactions: "
                "the EHR may be refusing writes)"
            )
            return False
        return True

    async def _check(self, label: str, checkpoint: Checkpoint, day: int, *, final: bool = False) -> None:
        """Checked when ``day`` is over: the clock at the start of the next day."""
        await self._advance_to(day + 1)
        handle = self.handle
        assert handle is not None
        assert self.result.referral_key is not None
        state = await handle.query(ReferralWorkflow.snapshot)
        # The end looks for everything the workflow writes: it goes into the report's Bundle.
        kinds = None if final else checks.kinds_checked(checkpoint)
        found = await checks.find_written(self.client, self.result.referral_key, self.sessions, kinds)
        problems = checks.unmet(checkpoint, state.phase, found)
        self.result.problems += [f"{label}: {problem}" for problem in problems]
        self.progress(
            f"  {label}: phase {state.phase}, " + ("as expected" if not problems else f"{len(problems)} unmet")
        )
        if final:
            self.result.phase = str(state.phase)
            self.result.resources = [resource for kind in found.values() for resource in kind]

    async def _stop_if_running(self) -> None:
        """A referral still open when its timeline ends is terminated, so it holds no timer on the server."""
        if self.handle is None:
            return
        await terminate_when_idle(self.handle, "scenario timeline ended")


def _writable_by_source(scenarios: Sequence[tuple[str, Scenario]]) -> dict[str, dict[str, bool]]:
    """Each source's capability overrides; one worker serves every scenario, so they must agree per source."""
    by_source: dict[str, dict[str, bool]] = {}
    for file, scenario in scenarios:
        spec = scenario.referral
        if by_source.setdefault(spec.source, spec.writable) != spec.writable:
            raise ScenarioError(f"{file}: source {spec.source!r} has other writable overrides in another scenario")
    return by_source
