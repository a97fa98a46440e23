"""``scripts/deployed.sh``: the deployed topology on one machine, without Docker. One PostgreSQL cluster (Debian's
package) holds Temporal's two databases, HAPI's and the service database; the Temporal server built from its Go
module runs as four services; HAPI runs on PostgreSQL; two workers and two API processes run as
``referral-service worker`` / ``api``, each on ports of its own. Stopping it stops everything it started.

The service's settings come from ``deploy/service.toml``, the file docker-compose mounts: the only change made
here is where each EHR is (compose's ``hapi`` host is this machine's HAPI), written to the state folder.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
import tomli_w

from referral_service.config import dev_key_ring
from referral_service.devstack import hapi_server
from referral_service.devstack.hapi_server import REPO_ROOT, HapiDatabase
from referral_service.devstack.postgres_server import PostgresServer, start_postgres
from referral_service.devstack.process import ManagedProcess, free_port
from referral_service.devstack.stack import stop_on_signals, unless_stopped
from referral_service.devstack.temporal_cluster import SERVICES, ServicePorts, TemporalCluster, start_cluster
from referral_service.devstack.temporal_server import binary

SERVICE_SETTINGS = REPO_ROOT / "deploy" / "service.toml"
SERVICE_DATABASE, HAPI_DATABASE = "iop_service", "hapi"
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class DeployedPorts:
    """Ports the topology's users reach; 0 takes a free one. Temporal's internal ports are always free ones."""

    temporal: int = 7233
    hapi: int = 8080
    postgres: int = 5433
    apis: tuple[int, ...] = (8000, 8010)
    worker_health: tuple[int, ...] = (8001, 8011)

    @classmethod
    def free(cls) -> DeployedPorts:
        return cls(0, 0, 0, (0, 0), (0, 0))


@dataclass
class ServiceProcess:
    """One ``referral-service worker`` or ``api`` process; ``start`` again after a kill, same ports and settings."""

    role: Literal["worker", "api"]
    name: str
    env: Mapping[str, str]
    health_url: str  # its /readyz
    log_path: Path
    process: ManagedProcess | None = None

    def start(self) -> None:
        argv = [binary("referral-service"), self.role]
        self.process = ManagedProcess.start(self.name, argv, self.log_path, dict(self.env))

    async def until_ready(self) -> None:
        assert self.process is not None, f"{self.name} was never started"
        await self.process.until_ready(lambda: _answers(self.health_url), READY_TIMEOUT_S)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()


@dataclass
class Deployment:
    state_dir: Path
    postgres: PostgresServer
    temporal: TemporalCluster
    hapi: ManagedProcess
    hapi_base_url: str
    service_env: Mapping[str, str]  # what every worker and API process shares
    workers: list[ServiceProcess] = field(default_factory=list)
    apis: list[ServiceProcess] = field(default_factory=list)

    @property
    def api_urls(self) -> list[str]:
        return [api.health_url.removesuffix("/readyz") for api in self.apis]

    def stop(self) -> None:
        """Front to back: the APIs, the workers (each finishes or hands back its activities), HAPI, Temporal,
        then the database they all stand on."""
        for process in (*self.apis, *self.workers):
            process.stop()
        self.hapi.stop()
        self.temporal.stop()
        self.postgres.stop()

    def summary(self) -> str:
        lines = [
            "IOP referral service, deployed topology:",
            *(f"  API {n + 1:<14}{url}/  (dashboard /inbox, FHIR /fhir)" for n, url in enumerate(self.api_urls)),
            *(f"  worker {n + 1:<11}{w.health_url}" for n, w in enumerate(self.workers)),
            f"  Temporal          {self.temporal.address}  (frontend; history, matching, worker services apart)",
            f"  HAPI FHIR (EHR)   {self.hapi_base_url}  (on PostgreSQL)",
            f"  PostgreSQL        127.0.0.1:{self.postgres.port}  (temporal, temporal_visibility, "
            f"{HAPI_DATABASE}, {SERVICE_DATABASE})",
            f"  state and logs    {self.state_dir}",
        ]
        return "\n".join(lines)


async def deploy(
    state_dir: Path,
    ports: DeployedPorts,
    *,
    settings: Mapping[str, object] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> Deployment:
    """Start the whole topology under ``state_dir`` and wait until every process is ready; on any failure stop
    what had started. ``settings`` replace top-level entries of ``deploy/service.toml`` (e.g. the sources);
    ``extra_env`` reaches every worker and API process (e.g. ``IOP_AUTH_*``)."""
    state_dir, postgres = await asyncio.to_thread(_start_database, state_dir, ports.postgres)
    started: list[ManagedProcess | TemporalCluster | ServiceProcess] = [postgres.process]
    try:
        jar = await asyncio.to_thread(hapi_server.build_jar)
        hapi_port = ports.hapi or free_port()
        database = HapiDatabase.on(postgres, HAPI_DATABASE)
        hapi = hapi_server.spawn(jar=jar, port=hapi_port, log_path=state_dir / "logs" / "hapi.log", database=database)
        started.append(hapi)
        cluster_ports = {name: ServicePorts.free() for name in SERVICES}
        if ports.temporal:  # the one port clients need; the services find each other through membership
            cluster_ports["frontend"] = dataclasses.replace(cluster_ports["frontend"], grpc=ports.temporal)
        # HAPI's JVM boots while the cluster comes up: by far the slowest of the two.
        temporal = await asyncio.to_thread(start_cluster, postgres, state_dir, ports=cluster_ports)
        started.append(temporal)
        base_url = hapi_server.base_url(hapi_port)
        await hapi.until_ready(lambda: hapi_server.metadata_ready(base_url), hapi_server.STARTUP_TIMEOUT_S)
        shared = tomllib.loads(SERVICE_SETTINGS.read_text()) | dict(settings or {})
        env = _service_env(state_dir, postgres, temporal, local_settings(shared, base_url)) | dict(extra_env or {})
        deployment = Deployment(state_dir, postgres, temporal, hapi, base_url, env)
        for n, port in enumerate(ports.worker_health, start=1):
            deployment.workers.append(_service("worker", n, port or free_port(), env, state_dir))
        for n, port in enumerate(ports.apis, start=1):
            deployment.apis.append(_service("api", n, port or free_port(), env, state_dir))
        for process in (*deployment.workers, *deployment.apis):
            process.start()
            started.append(process)
        await asyncio.gather(*(p.until_ready() for p in (*deployment.workers, *deployment.apis)))
        return deployment
    except BaseException:
        for thing in reversed(started):
            await asyncio.to_thread(thing.stop)
        raise


def _start_database(state_dir: Path, port: int) -> tuple[Path, PostgresServer]:
    """The state folder made absolute and ready, and the PostgreSQL cluster in it with HAPI's and the service's
    databases (Temporal's are the cluster's to make)."""
    state_dir = state_dir.resolve()
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    postgres = start_postgres(state_dir / "postgres", port or None)
    for database in (HAPI_DATABASE, SERVICE_DATABASE):
        if not postgres.has_database(database):
            postgres.create_database(database)
    return state_dir, postgres


def _service_env(
    state_dir: Path, postgres: PostgresServer, temporal: TemporalCluster, settings: Mapping[str, object]
) -> dict[str, str]:
    """The environment every worker and API process shares: one settings file, one key ring, one database."""
    settings_file = state_dir / "service.toml"
    settings_file.write_text(tomli_w.dumps(dict(settings)))
    dev_key_ring(state_dir)  # made once, owner-only; every process reads the same ring from the environment
    return {
        "IOP_CONFIG": str(settings_file),
        "IOP_TEMPORAL_ADDRESS": temporal.address,
        "IOP_DATABASE_URL": postgres.url(SERVICE_DATABASE),
        "IOP_CODEC_KEYS": (state_dir / "codec-keys.json").read_text(),  # the ring's JSON, as dev_key_ring wrote it
        "IOP_LOG_FORMAT": "json",
    }


def local_settings(shared: Mapping[str, object], hapi_url: str) -> dict[str, object]:
    """``deploy/service.toml`` as this machine runs it: every EHR source pointed at the local HAPI."""
    sources = shared.get("sources", [])
    assert isinstance(sources, list), "sources must be an array of tables"
    return {**shared, "sources": [{**source, "base_url": hapi_url} for source in sources]}


def _service(role: Literal["worker", "api"], n: int, port: int, env: Mapping[str, str], state: Path) -> ServiceProcess:
    name = f"{role}-{n}"
    port_setting = "IOP_API_PORT" if role == "api" else "IOP_WORKER_HEALTH_PORT"
    own = {port_setting: str(port), "IOP_STATE_DIR": str(state / name)}
    return ServiceProcess(role, name, {**env, **own}, f"http://127.0.0.1:{port}/readyz", state / "logs" / f"{name}.log")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


async def serve(state_dir: Path, ports: DeployedPorts) -> int:
    """Bring the topology up, print where everything is, and keep it up until SIGINT or SIGTERM."""
    stop = stop_on_signals(grace_s=120)
    deployment = await unless_stopped(stop, deploy(state_dir, ports))
    if deployment is None:
        return 0
    print(f"\n{deployment.summary()}\nCtrl-C stops everything.\n", flush=True)
    try:
        await stop.wait()
    finally:
        await asyncio.to_thread(deployment.stop)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/deployed.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=Path(".iop-deployed"), help="default: .iop-deployed")
    parser.add_argument("--free-ports", action="store_true", help="every port a free one (printed once up)")
    args = parser.parse_args(argv)
    ports = DeployedPorts.free() if args.free_ports else DeployedPorts()
    return asyncio.run(serve(args.state_dir, ports))


if __name__ == "__main__":
    raise SystemExit(main())
