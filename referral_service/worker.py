"""The Temporal worker: referral workflows plus the activities that talk to referring EHRs."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

from sqlalchemy import Engine
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from referral_service.activities.intake_poll import IntakePollActivities
from referral_service.activities.local_try_grace import LocalTryGrace
from referral_service.activities.read_model import ReadModelActivities
from referral_service.activities.writeback import WritebackActivities
from referral_service.codec import KeyRing, data_converter
from referral_service.config import Settings
from referral_service.domain.program import Program
from referral_service.ehr.client import FhirClient
from referral_service.intake.starts import ReferralStarts
from referral_service.intake.take_in import Intake
from referral_service.lifetime import StartupError, activity_grace
from referral_service.programs import load_program
from referral_service.store.database import open_database, scratch_database
from referral_service.store.ehr_rates import share_rates
from referral_service.temporal_client.key_ring_secrets import patient_match_secret, referral_rows, unencrypted
from referral_service.temporal_client.search_attribute_setup import missing_search_attributes
from workflows.referral import ReferralWorkflow
from workflows.source_poll import SourcePollWorkflow

# The replayer's sandbox: side-effect-free model libraries imported once, outside it (~5 MB and ~120 ms of CPU
# per workflow saved); our workflow modules are imported inside, where a non-deterministic call fails the replay.
PASSTHROUGH_MODULES = ("fhir.resources", "fhir_core", "referral_service.domain", "fhir_mappings")


class SearchAttributesMissingError(StartupError):
    """Upserting an unregistered attribute would make every workflow task retry forever."""


def ehr_clients(settings: Settings) -> dict[str, FhirClient]:
    """One pooled client per configured referring EHR, within its call limits (shared ones through the database)."""
    share_rates(settings.database(), [source.throttle for source in settings.sources])
    return {source.id: FhirClient(source.connection()) for source in settings.sources}


async def build_worker(
    client: Client, settings: Settings, clients: Mapping[str, FhirClient], program: Program
) -> Worker:
    """A worker for ``settings.task_queue``; refuses to start when search attributes are not registered."""
    missing = await missing_search_attributes(client)
    if missing:
        raise SearchAttributesMissingError(f"register these search attributes first: {', '.join(missing)}")
    return create_worker(
        client,
        settings.task_queue,
        clients,
        program,
        activity_grace(settings.shutdown_grace_seconds),
        database=open_database(settings.database()),
    )


def create_worker(
    client: Client,
    task_queue: str,
    clients: Mapping[str, FhirClient],
    program: Program | None = None,
    shutdown_grace: timedelta = timedelta(seconds=20),
    *,
    database: Engine | None = None,
) -> Worker:
    """The worker itself, without the start-up check (the time-skipping server cannot list attributes).
    ``program``: the one polled referrals are taken into (default: the shipped example program).
    ``shutdown_grace``: how long in-flight activities run on after ``shutdown`` before they are cancelled.
    ``database``: the service database the read model lives in (default: a scratch one, for an ephemeral
    Temporal server)."""
    writeback = WritebackActivities(clients)
    starts = ReferralStarts(client, task_queue, program or load_program(), patient_match_secret(client, unencrypted))
    polling = IntakePollActivities(clients, Intake(starts).take_in_polled)
    read_model = ReadModelActivities(referral_rows(client, database or scratch_database()))
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ReferralWorkflow, SourcePollWorkflow],
        activities=[*writeback.all(), polling.find_changed_referrals, read_model.record_referral_row],
        # No sandbox in the worker: re-importing the workflow modules for every workflow it starts or replays took
        # ~20 ms of CPU and a private copy of them per cached referral, and hooking imports around every
        # activation as much CPU again as the workflow code (bench/RESULTS.md, issue 18). Determinism is checked
        # where it costs nothing at run time: CI replays every recorded history in the full sandbox.
        workflow_runner=UnsandboxedWorkflowRunner(),
        graceful_shutdown_timeout=shutdown_grace,
        interceptors=[LocalTryGrace([w.__name__ for w in writeback.all()], shutdown_grace)],
    )


def _workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


@dataclass(frozen=True)
class ReplayResult:
    """One recorded history replayed against the current workflow code."""

    source: str
    workflow_id: str
    events: int
    failure: str | None  # the non-determinism (or other replay failure), None when it replays cleanly


async def replay_histories(
    paths: Iterable[Path], key_ring: KeyRing, *, processes: int | None = None
) -> list[ReplayResult]:
    """Replay history JSON files (as ``temporal workflow show --output json`` writes them) with the worker's
    own workflows and sandbox, so a code change that would break running referrals is caught before deploy.

    Replay is CPU-bound Python, so ``processes`` processes (default: one per CPU this process may use) share
    the files: this one starts at once while the others boot, and each takes the next unclaimed file when it
    is free. Results come back in the order of ``paths``.
    """
    files = list(paths)
    workers = min(processes or len(os.sched_getaffinity(0)), len(files))
    if workers <= 1:
        return [result for _, result in await _replay_claimed(files, key_ring, None)]
    # spawn, not fork: a process that already runs the Temporal runtime's threads must not be forked.
    context = multiprocessing.get_context("spawn")
    claim = context.Value("i", 0)
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(workers - 1, context, initializer=_share_claim, initargs=(claim,)) as pool:
        others = [loop.run_in_executor(pool, _replay_claimed_in_child, files, key_ring) for _ in range(workers - 1)]
        mine = await _replay_claimed(files, key_ring, claim)
        replayed = [*mine, *(pair for theirs in await asyncio.gather(*others) for pair in theirs)]
    return [result for _, result in sorted(replayed, key=lambda pair: pair[0])]


_claim: Synchronized[int] | None = None  # the next file to replay, shared by the processes of one replay


def _share_claim(claim: Synchronized[int]) -> None:
    global _claim
    _claim = claim


def _replay_claimed_in_child(files: list[Path], key_ring: KeyRing) -> list[tuple[int, ReplayResult]]:
    return asyncio.run(_replay_claimed(files, key_ring, _claim))


async def _replay_claimed(
    files: list[Path], key_ring: KeyRing, claim: Synchronized[int] | None
) -> list[tuple[int, ReplayResult]]:
    """Replay the files this process claims (all of them without ``claim``) through one replayer."""
    claimed: list[int] = []

    def next_index() -> int:
        if claim is None:
            return len(claimed)
        with claim.get_lock():
            index, claim.value = claim.value, claim.value + 1
            return index

    async def histories() -> AsyncIterator[WorkflowHistory]:
        while (index := next_index()) < len(files):
            claimed.append(index)
            yield WorkflowHistory.from_json(files[index].stem, files[index].read_text())

    replayer = Replayer(
        workflows=[ReferralWorkflow], workflow_runner=_workflow_runner(), data_converter=data_converter(key_ring)
    )
    results: list[tuple[int, ReplayResult]] = []
    async with replayer.workflow_replay_iterator(histories()) as replayed:
        async for outcome in replayed:  # one result per history, in the order they were claimed
            index = claimed[len(results)]
            failure = None if outcome.replay_failure is None else str(outcome.replay_failure)
            history = outcome.history
            results.append((index, ReplayResult(str(files[index]), history.workflow_id, len(history.events), failure)))
    return results
