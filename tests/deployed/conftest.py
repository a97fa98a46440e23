"""The deployed stage (after the main suite): the Temporal cluster as deployed (four services on PostgreSQL),
built from the pinned Go module, and the whole topology ``scripts/deployed.sh`` starts, each once per session
in a temporary folder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client

from referral_service.codec import data_converter
from referral_service.config import dev_key_ring
from referral_service.devstack.deployed import DeployedPorts, Deployment, deploy
from referral_service.devstack.postgres_server import reachable_folder, start_postgres
from referral_service.devstack.process import ServerStartError, free_port
from referral_service.devstack.temporal_cluster import TemporalBuild, TemporalCluster, build, start_cluster
from referral_service.ehr.client import FhirClient
from referral_service.ehr.source import SourceConfig
from tests.conftest import HAPI_SOURCE_ID
from tests.oidc_provider import PROGRAM_ADMIN, OidcProvider, serving, sign_in_settings
from tests.operations.test_two_api_processes import auth_env


@pytest.fixture(scope="session")
def temporal_build() -> TemporalBuild:
    """scripts/build_temporal_server.sh: seconds when built already, about 9 minutes the first time."""
    try:
        return build()
    except ServerStartError as error:  # Go missing or the build broken: say so, never skip
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def temporal_cluster(temporal_build: TemporalBuild) -> Iterator[TemporalCluster]:
    state = reachable_folder("iop-test-temporal-cluster-")
    postgres = start_postgres(state / "postgres")
    try:
        cluster = start_cluster(postgres, state, temporal=temporal_build)
        yield cluster
        cluster.stop()
    finally:
        postgres.stop()


@pytest.fixture(scope="session")
def deployed_oidc() -> Iterator[OidcProvider]:
    """The deployment's identity provider: the dashboard signs in through it, the tests' tokens come from it."""
    with serving(OidcProvider()) as provider:
        provider.user = PROGRAM_ADMIN
        yield provider


@pytest.fixture(scope="session")
async def deployment(deployed_oidc: OidcProvider, temporal_build: TemporalBuild) -> AsyncIterator[Deployment]:
    """``scripts/deployed.sh``'s topology (``deployed.deploy``) on free ports, in a folder the cluster's owner
    (``postgres`` under root) can reach; the first API process is the public address sign-in returns to."""
    ports = DeployedPorts(
        temporal=free_port(),
        hapi=free_port(),
        postgres=free_port(),
        apis=(free_port(), free_port()),
        worker_health=(free_port(), free_port()),
    )
    state = await asyncio.to_thread(reachable_folder, "iop-deployed-")
    auth = auth_env(sign_in_settings(deployed_oidc, f"http://127.0.0.1:{ports.apis[0]}"))
    sources = [{"id": HAPI_SOURCE_ID, "base_url": "(the deployment's HAPI)"}]
    running = await deploy(state, ports, settings={"sources": sources}, extra_env=auth)
    yield running
    await asyncio.to_thread(running.stop)


@pytest.fixture(scope="session")
async def deployed_temporal(deployment: Deployment) -> Client:
    """A client of the deployment's Temporal cluster, with the key ring its processes share."""
    ring = dev_key_ring(deployment.state_dir)
    return await Client.connect(deployment.temporal.address, data_converter=data_converter(ring))


@pytest.fixture(scope="session")
async def deployed_hapi(deployment: Deployment) -> AsyncIterator[FhirClient]:
    client = FhirClient(SourceConfig(id=HAPI_SOURCE_ID, base_url=deployment.hapi_base_url))
    yield client
    await client.aclose()
