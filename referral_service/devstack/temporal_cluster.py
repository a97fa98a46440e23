"""A Temporal cluster as deployed, on PostgreSQL: the server pinned in ``deploy/temporal-server`` (built by
``scripts/build_temporal_server.sh``), its four services each in its own process, all configured by the one
templated ``deploy/temporal-server/config/temporal.yaml`` that docker-compose mounts too.

Each process binds its own ports and finds the others through membership (kept in PostgreSQL), so one service
can be killed and started again on the same ports while the rest run on.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from referral_service.devstack.hapi_server import REPO_ROOT
from referral_service.devstack.postgres_server import SUPERUSER, PostgresServer
from referral_service.devstack.process import ManagedProcess, ServerStartError, free_port
from referral_service.devstack.temporal_server import accepts_connections, binary, search_attribute_types

BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_temporal_server.sh"
CONFIG_FILE = REPO_ROOT / "deploy" / "temporal-server" / "config" / "temporal.yaml"
# History first: the others wait for its shards; the worker service last, it is a client of the frontend.
SERVICES = ("history", "matching", "frontend", "worker")
# Database -> the schema embedded in the sql tool (so no module source is needed at run time).
SCHEMAS = {"temporal": "postgresql/v12/temporal", "temporal_visibility": "postgresql/v12/visibility"}
NAMESPACE = "default"
MAX_MEMBERSHIP_PORT = 32767
STARTUP_TIMEOUT_S = 60.0
CLI_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class TemporalBuild:
    """The folder the build script filled: the server and its SQL schema tool."""

    folder: Path

    @property
    def server(self) -> Path:
        return self.folder / "temporal-server"

    @property
    def sql_tool(self) -> Path:
        return self.folder / "temporal-sql-tool"


def build() -> TemporalBuild:
    """Run the build script (seconds when already built; about 9 min the first time on 2 cores); its progress
    and errors go to our stderr."""
    bash = shutil.which("bash") or "/bin/bash"
    done = subprocess.run([bash, str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise ServerStartError(f"{BUILD_SCRIPT.name} failed with exit code {done.returncode}; its stderr says why")
    return TemporalBuild(Path(done.stdout.strip().splitlines()[-1]))


@dataclass(frozen=True)
class ServicePorts:
    grpc: int
    membership: int
    metrics: int
    http: int = 0  # the frontend's HTTP API; the other services have none

    @classmethod
    def free(cls) -> ServicePorts:
        # Temporal keeps the membership port in a SMALLINT column (cluster_membership.rpc_port on PostgreSQL).
        membership = free_port(below=MAX_MEMBERSHIP_PORT + 1)
        return cls(grpc=free_port(), membership=membership, metrics=free_port(), http=free_port())


def server_arguments(config_file: str, service: str) -> list[str]:
    """``temporal-server``'s arguments for one service; docker-compose gives its containers the same."""
    return ["--config-file", config_file, "--allow-no-auth", "start", "--service", service]


@dataclass
class TemporalCluster:
    build: TemporalBuild
    ports: Mapping[str, ServicePorts]
    env: Mapping[str, str]  # what temporal.yaml reads, the same for every service
    log_dir: Path
    services: dict[str, ManagedProcess] = field(default_factory=dict)

    @property
    def address(self) -> str:
        """The frontend's gRPC address, for clients and workers."""
        return f"127.0.0.1:{self.ports['frontend'].grpc}"

    def start_service(self, name: str) -> ManagedProcess:
        """Start one service (again, after a kill: same ports, same config) and wait until it takes connections."""
        argv = [str(self.build.server), *server_arguments(str(CONFIG_FILE), name)]
        ports = self.ports[name]
        env = {**self.env, "PROMETHEUS_ENDPOINT": f"127.0.0.1:{ports.metrics}"}
        process = ManagedProcess.start(f"Temporal {name}", argv, self.log_dir / f"temporal-{name}.log", env)
        self.services[name] = process
        process.wait_ready(lambda: accepts_connections(ports.grpc), STARTUP_TIMEOUT_S)
        return process

    def stop(self) -> None:
        for name in reversed(SERVICES):
            if name in self.services:
                self.services[name].stop()


def start_cluster(
    postgres: PostgresServer,
    state_dir: Path,
    *,
    history_shards: int = 4,
    ports: Mapping[str, ServicePorts] | None = None,
    temporal: TemporalBuild | None = None,
) -> TemporalCluster:
    """Set up the databases (skipping what exists), start the four services (free ports unless given), and
    register the namespace and the referral search attributes; stop the services on any failure.
    ``history_shards`` is fixed once the databases exist: Temporal then keeps the recorded count and warns."""
    temporal = temporal or build()
    for database, schema in SCHEMAS.items():
        _set_up_schema(temporal, postgres, database, schema)
    ports = ports or {name: ServicePorts.free() for name in SERVICES}
    cluster = TemporalCluster(temporal, ports, _config_env(postgres, history_shards, ports), state_dir / "logs")
    try:
        for name in SERVICES:
            cluster.start_service(name)
        frontend = cluster.services["frontend"]
        frontend.wait_ready(lambda: _cli_ok(cluster.address, "operator", "cluster", "health"), STARTUP_TIMEOUT_S)
        if not _cli_ok(cluster.address, "operator", "namespace", "describe", "--namespace", NAMESPACE):
            _cli_must(cluster.address, "operator", "namespace", "create", "--namespace", NAMESPACE)
        # A new namespace reaches the frontend's cache within seconds, new attributes the queries about one later.
        frontend.wait_ready(lambda: _create_search_attributes(cluster.address), STARTUP_TIMEOUT_S)
        frontend.wait_ready(lambda: _search_attributes_queryable(cluster.address), STARTUP_TIMEOUT_S)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _set_up_schema(temporal: TemporalBuild, postgres: PostgresServer, database: str, schema: str) -> None:
    if not postgres.has_database(database):
        postgres.create_database(database)
    connection = ["--plugin", "postgres12", "--ep", "127.0.0.1", "-p", str(postgres.port), "-u", SUPERUSER]
    # Both idempotent: versioning tables only "if not exists", then only the versions not applied yet.
    for command in (["setup-schema", "-v", "0.0"], ["update-schema", "--schema-name", schema]):
        argv = [str(temporal.sql_tool), *connection, "--db", database, *command]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=CLI_TIMEOUT_S)
        if done.returncode != 0:
            raise ServerStartError(f"temporal-sql-tool {command[0]} on {database} failed: {done.stderr.strip()}")


def _config_env(postgres: PostgresServer, history_shards: int, ports: Mapping[str, ServicePorts]) -> dict[str, str]:
    """The variables temporal.yaml reads (names as in the temporalio/server image), pointing at our PostgreSQL."""
    env = {
        "POSTGRES_SEEDS": "127.0.0.1",
        "DB_PORT": str(postgres.port),
        "POSTGRES_USER": SUPERUSER,
        "POSTGRES_PWD": "",
        "NUM_HISTORY_SHARDS": str(history_shards),
        "LOG_LEVEL": "warn",
        "FRONTEND_HTTP_PORT": str(ports["frontend"].http),
    }
    for name, service in ports.items():
        env[f"{name.upper()}_GRPC_PORT"] = str(service.grpc)
        env[f"{name.upper()}_MEMBERSHIP_PORT"] = str(service.membership)
    return env


def _create_search_attributes(address: str) -> bool:
    """Idempotent: an attribute that exists with the same type is left as it is."""
    pairs = [arg for name, kind in search_attribute_types().items() for arg in ("--name", name, "--type", kind)]
    return _cli_ok(address, "operator", "search-attribute", "create", "--namespace", NAMESPACE, *pairs)


def _search_attributes_queryable(address: str) -> bool:
    query = " AND ".join(f"{name} IS NULL" for name in search_attribute_types())
    return _cli_ok(address, "workflow", "count", "--namespace", NAMESPACE, "--query", query)


def _cli(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [binary("temporal"), *args, "--address", address]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=CLI_TIMEOUT_S)


def _cli_ok(address: str, *args: str) -> bool:
    return _cli(address, *args).returncode == 0


def _cli_must(address: str, *args: str) -> None:
    done = _cli(address, *args)
    if done.returncode != 0:
        raise ServerStartError(f"temporal {' '.join(args[:3])} failed: {done.stderr.strip()}")
