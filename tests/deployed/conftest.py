"""The Temporal cluster as deployed (four services on PostgreSQL), built from the pinned Go module and started
once per session in a temporary folder."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from referral_service.devstack.postgres_server import start_postgres
from referral_service.devstack.process import ServerStartError
from referral_service.devstack.temporal_cluster import TemporalBuild, TemporalCluster, build, start_cluster


@pytest.fixture(scope="session")
def temporal_build() -> TemporalBuild:
    """scripts/build_temporal_server.sh: seconds when built already, about 9 minutes the first time."""
    try:
        return build()
    except ServerStartError as error:  # Go missing or the build broken: say so, never skip
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def temporal_cluster(temporal_build: TemporalBuild) -> Iterator[TemporalCluster]:
    state = Path(tempfile.mkdtemp(prefix="iop-test-temporal-cluster-"))
    state.chmod(0o755)  # the PostgreSQL cluster's owner (``postgres`` under root) must reach its data folder
    postgres = start_postgres(state / "postgres")
    try:
        cluster = start_cluster(postgres, state, temporal=temporal_build)
        yield cluster
        cluster.stop()
    finally:
        postgres.stop()
