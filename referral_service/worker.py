"""The Temporal worker: referral workflows plus the activities that talk to referring EHRs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from referral_service.activities.intake_poll import IntakePollActivities
from referral_service.activities.writeback import WritebackActivities
from referral_service.codec import KeyRing, data_converter
from referral_service.config import Settings
from referral_service.ehr.client import FhirClient
from referral_service.temporal_client import missing_search_attributes, patient_match_secret
from workflows.referral import ReferralWorkflow
from workflows.source_poll import SourcePollWorkflow

# Side-effect-free model libraries: importing them once, outside the sandbox, saves ~5 MB and ~120 ms of
# worker CPU per cached workflow (measured; see TESTING.md).
PASSTHROUGH_MODULES = ("fhir.resources", "fhir_core", "referral_service.domain", "fhir_mappings")


class SearchAttributesMissingError(RuntimeError):
    """Upserting an unregistered attribute would make every workflow task retry forever."""


def ehr_clients(settings: Settings) -> dict[str, FhirClient]:
    """One pooled client per configured referring EHR."""
    return {source.id: FhirClient(source.connection()) for source in settings.sources}


async def build_worker(client: Client, settings: Settings, clients: Mapping[str, FhirClient]) -> Worker:
    """A worker for ``settings.task_queue``; refuses to start when search attributes are not registered."""
    missing = await missing_search_attributes(client)
    if missing:
        raise SearchAttributesMissingError(f"register these search attributes first: {', '.join(missing)}")
    return create_worker(client, settings.task_queue, clients)


def create_worker(client: Client, task_queue: str, clients: Mapping[str, FhirClient]) -> Worker:
    """The worker itself, without the start-up check (the time-skipping server cannot list attributes)."""
    writeback = WritebackActivities(clients)
    polling = IntakePollActivities(clients, patient_match_secret(client, _unencrypted))
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ReferralWorkflow, SourcePollWorkflow],
        activities=[*writeback.all(), polling.find_changed_referrals],
        workflow_runner=_workflow_runner(),
        graceful_shutdown_timeout=timedelta(seconds=20),
    )


def _unencrypted() -> KeyRing:
    raise RuntimeError("the worker's Temporal client must encrypt payloads: connect with temporal_client.connect")


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


async def replay_histories(paths: Iterable[Path], key_ring: KeyRing) -> list[ReplayResult]:
    """Replay history JSON files (as ``temporal workflow show --output json`` writes them) with the worker's
    own workflows and sandbox, so a code change that would break running referrals is caught before deploy.
    """
    replayer = Replayer(
        workflows=[ReferralWorkflow], workflow_runner=_workflow_runner(), data_converter=data_converter(key_ring)
    )
    results = []
    for path in paths:
        workflow_id = path.stem
        history = WorkflowHistory.from_json(workflow_id, path.read_text())
        replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        failure = None if replayed.replay_failure is None else str(replayed.replay_failure)
        results.append(ReplayResult(str(path), workflow_id, len(history.events), failure))
    return results
