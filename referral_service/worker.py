"""The Temporal worker: referral workflows plus the activities that talk to referring EHRs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from referral_service.activities.writeback import WritebackActivities
from referral_service.config import Settings
from referral_service.ehr.client import FhirClient
from referral_service.ehr.source import SourceConfig
from referral_service.temporal_client import missing_search_attributes
from workflows.referral import ReferralWorkflow

# Side-effect-free model libraries: importing them once, outside the sandbox, saves ~5 MB and ~120 ms of
# worker CPU per cached workflow (measured; see TESTING.md).
PASSTHROUGH_MODULES = ("fhir.resources", "fhir_core", "referral_service.domain", "fhir_mappings")


class SearchAttributesMissingError(RuntimeError):
    """Upserting an unregistered attribute would make every workflow task retry forever."""


def ehr_clients(settings: Settings) -> dict[str, FhirClient]:
    """One pooled client per configured referring EHR."""
    return {
        source.id: FhirClient(
            SourceConfig(
                id=source.id,
                base_url=str(source.base_url).rstrip("/"),
                timeout_seconds=source.timeout_seconds,
            )
        )
        for source in settings.sources
    }


async def build_worker(client: Client, settings: Settings, clients: Mapping[str, FhirClient]) -> Worker:
    """A worker for ``settings.task_queue``; refuses to start when search attributes are not registered."""
    missing = await missing_search_attributes(client)
    if missing:
        raise SearchAttributesMissingError(f"register these search attributes first: {', '.join(missing)}")
    return create_worker(client, settings.task_queue, clients)


def create_worker(client: Client, task_queue: str, clients: Mapping[str, FhirClient]) -> Worker:
    """The worker itself, without the start-up check (the time-skipping server cannot list attributes)."""
    activities = WritebackActivities(clients)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ReferralWorkflow],
        activities=activities.all(),
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
        ),
        graceful_shutdown_timeout=timedelta(seconds=20),
    )
