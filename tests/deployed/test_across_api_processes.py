"""On the deployed topology (two API processes, two workers, the Temporal cluster, HAPI and the service database
on PostgreSQL): a request may land on either API process. The sign-in and shared-state stories of
``tests/operations/test_two_api_processes.py`` run here as they are, and a referral's whole lifecycle goes
through a proxy's choice of process for every request, each resource landing in the EHR once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from temporalio.client import Client

from referral_service.devstack.deployed import Deployment
from referral_service.domain.program import Program
from referral_service.ehr.client import FhirClient
from referral_service.replay.clock import terminate_when_idle
from tests.api_driver import Api
from tests.conftest import HAPI_SOURCE_ID
from tests.deployed.topology import EitherApi
from tests.oidc_provider import OidcProvider
from tests.operations.test_two_api_processes import (  # noqa: F401 - collected here too, on this topology
    STAFF,
    TwoApis,
    test_a_referral_posted_to_one_process_is_listed_decided_and_shown_through_the_other,
    test_a_sign_in_begun_on_one_process_finishes_on_the_other_and_sign_out_there_ends_it_here,
)
from tests.program_day import program_today
from tests.workflows.stories import written
from workflows.referral import ReferralWorkflow

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def apis(deployment: Deployment, deployed_oidc: OidcProvider, deployed_temporal: Client) -> TwoApis:
    first, second = deployment.api_urls
    return TwoApis(first, second, deployed_oidc, deployed_temporal)


@pytest.fixture
async def proxy(deployment: Deployment) -> AsyncIterator[EitherApi]:
    transport = EitherApi(deployment.api_urls)
    yield transport
    await transport.aclose()


async def test_a_whole_lifecycle_through_either_process_writes_each_resource_once(
    deployment: Deployment,
    deployed_oidc: OidcProvider,
    deployed_temporal: Client,
    deployed_hapi: FhirClient,
    program: Program,
    proxy: EitherApi,
) -> None:
    today = program_today(program=program)
    discharged = today - timedelta(days=3)
    hospital = {"Authorization": f"Bearer {deployed_oidc.access_token('referring-system', source=HAPI_SOURCE_ID)}"}
    staff = {"Authorization": f"Bearer {deployed_oidc.access_token(*STAFF, subject='cm.ortiz')}"}
    base = deployment.api_urls[0]  # the proxy picks the process; this only names the scheme
    async with (
        httpx.AsyncClient(base_url=base, transport=proxy, headers=hospital, timeout=60) as from_hospital,
        httpx.AsyncClient(base_url=base, transport=proxy, headers=staff, timeout=60) as from_staff,
    ):
        key = await Api(from_hospital).submit(discharged_on=discharged)
        try:
            case_manager = Api(from_staff)
            await case_manager.snapshot_until(key, lambda s: s["phase"] == "screening", "screening")
            await case_manager.accept(key, "adult-mh")
            for n in range(1, 4):
                await case_manager.attend(key, discharged + timedelta(days=n), session_id=f"s{n}")
            await case_manager.discharge(key, "completed", today)
            await case_manager.snapshot_until(key, lambda s: s["phase"] == "aftercare", "aftercare")
        finally:
            await terminate_when_idle(deployed_temporal.get_workflow_handle(key), "test ended")

    assert set(proxy.served) == {0, 1}, "every request went to one process"
    state = await deployed_temporal.get_workflow_handle_for(ReferralWorkflow.run, key).query(ReferralWorkflow.snapshot)
    kinds = sorted(write.resource_type for write in state.writes.values())
    assert kinds.count("Encounter") == 3
    assert {"CarePlan", "CareTeam", "Task"} <= set(kinds)
    for write_key, write in state.writes.items():
        assert len(await written(deployed_hapi, write.resource_type, write_key)) == 1, write_key
