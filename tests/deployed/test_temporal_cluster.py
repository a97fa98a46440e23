"""A referral on the Temporal cluster as deployed (frontend, history, matching and worker services, each its
own process, on PostgreSQL), run by a real worker of ours writing to HAPI: the history service is SIGKILLed
mid-story and started again, and the referral carries on and closes with each EHR resource written once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from referral_service.codec import KeyRing, data_converter
from referral_service.devstack.temporal_cluster import NAMESPACE, TemporalCluster
from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import Program
from referral_service.ehr.client import FhirClient
from referral_service.worker import create_worker
from tests.conftest import HAPI_SOURCE_ID
from tests.polling import eventually
from tests.referrals import updated
from tests.workflows.stories import session, start_referral, written
from workflows.referral import ReferralWorkflow
from workflows.referral_types import CancelInput, ScreeningDecisionInput

# The first build of the Temporal server (the session fixture) takes about 9 minutes on 2 cores.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture
async def cluster_env(temporal_cluster: TemporalCluster, key_ring: KeyRing) -> WorkflowEnvironment:
    client = await Client.connect(
        temporal_cluster.address, namespace=NAMESPACE, data_converter=data_converter(key_ring)
    )
    return WorkflowEnvironment.from_client(client)


@pytest.fixture
async def task_queue(cluster_env: WorkflowEnvironment, hapi_client: FhirClient) -> AsyncIterator[str]:
    queue = f"referrals-{uuid.uuid4().hex[:8]}"
    async with create_worker(cluster_env.client, queue, {HAPI_SOURCE_ID: hapi_client}):
        yield queue


async def test_referral_carries_on_after_the_history_service_is_killed_and_restarted(
    temporal_cluster: TemporalCluster,
    cluster_env: WorkflowEnvironment,
    hapi_client: FhirClient,
    program: Program,
    task_queue: str,
) -> None:
    handle = await start_referral(cluster_env, hapi_client, program, task_queue)
    await handle.execute_update(ReferralWorkflow.decide, ScreeningDecisionInput(decision="accept", track_id="sud"))
    await handle.execute_update(ReferralWorkflow.record_session, session(1))

    temporal_cluster.services["history"].kill()
    temporal_cluster.start_service("history")

    after_restart = await updated(handle, ReferralWorkflow.record_session, session(2))
    assert [s.session_id for s in after_restart.sessions] == ["s1", "s2"]
    await handle.signal(ReferralWorkflow.cancel, CancelInput(reason="revoked by referrer"))
    assert (await handle.result()).phase == Phase.CANCELLED
    for resource_type, key, status in (
        ("Task", "task", "cancelled"),
        ("CarePlan", "careplan", "revoked"),
        ("CareTeam", "careteam", "inactive"),
    ):
        [resource] = await written(hapi_client, resource_type, f"{handle.id}/{key}")
        assert resource["status"] == status
    for session_id in ("s1", "s2"):
        assert len(await written(hapi_client, "Encounter", f"{handle.id}/encounter/{session_id}")) == 1
    # Visibility on PostgreSQL answers by our search attributes.
    query = f"WorkflowId = '{handle.id}' AND ReferralPhase = '{Phase.CANCELLED}'"
    await eventually(lambda: _count(cluster_env.client, query), "the cancelled referral in visibility")


async def _count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count
