"""docker-compose.yml checked against what the service expects (no Docker engine runs on CI machines)."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from referral_service.cli import main
from referral_service.codec import KeyRing
from referral_service.config import Settings, load_settings
from referral_service.config.auth import AuthSettings
from referral_service.devstack import deployed, hapi_server, temporal_cluster
from workflows import search_attributes

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
TEMPORAL_SERVICES = {f"temporal-{name}": name for name in temporal_cluster.SERVICES}
# How `temporal operator search-attribute create --type` names each of the SDK's indexed value types.
CLI_TYPE = {
    "KEYWORD": "Keyword",
    "BOOL": "Bool",
    "DATETIME": "Datetime",
    "KEYWORD_LIST": "KeywordList",
    "INT": "Int",
}


def _env(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    return {str(k): str(v) for k, v in env.items()}


def _mounted(service: str, host_file: Path) -> str:
    """Where ``service`` mounts ``host_file`` (read-only), the path its container reads."""
    mounts = [str(volume).split(":") for volume in SERVICES[service].get("volumes", [])]
    found = [(target, options) for source, target, *options in mounts if (ROOT / source).resolve() == host_file]
    assert len(found) == 1, f"{service} does not mount {host_file.relative_to(ROOT)}"
    [(container_file, options)] = found
    assert options == ["ro"], f"{service} may write to {host_file.relative_to(ROOT)}"
    return container_file


def _host_ports(service: dict[str, Any]) -> list[str]:
    """The host side of each ``[ip:]host:container`` mapping."""
    return [str(mapping).rsplit(":", 1)[0].split(":")[-1] for mapping in service.get("ports", [])]


def test_the_stack_has_temporal_on_postgres_hapi_the_api_and_the_worker() -> None:
    assert set(SERVICES) == {
        "temporal-db", "temporal-schema", *TEMPORAL_SERVICES, "temporal-namespace", "temporal-ui",
        "hapi-db", "hapi", "service-db", "api", "worker",
    }  # fmt: skip
    images = {name: service.get("image", "") for name, service in SERVICES.items()}
    assert not [image for image in images.values() if "auto-setup" in image], "auto-setup is deprecated"
    assert images["temporal-ui"].startswith("temporalio/ui:")
    assert images["temporal-db"].startswith("postgres:")
    assert images["hapi-db"].startswith("postgres:")
    assert images["service-db"].startswith("postgres:")


def test_every_api_and_worker_process_shares_the_service_database_on_postgresql() -> None:
    """The audit trail and sign-out revocations must be one for all API processes: no SQLite file per container."""
    db = _env("service-db")
    for service in ("api", "worker"):
        url = _env(service)["IOP_DATABASE_URL"]
        assert url.startswith(f"postgresql+psycopg://{db['POSTGRES_USER']}:"), url
        assert url.endswith(f"@service-db:5432/{db['POSTGRES_DB']}"), url
        assert SERVICES[service]["depends_on"]["service-db"] == {"condition": "service_healthy"}


def test_hapi_is_our_test_server_with_the_settings_file_and_jvm_options_our_launcher_uses() -> None:
    """One source of truth: compose runs the jar built from hapi_test_server/ (request validation on) with
    deploy/hapi/postgres.yaml and the JVM options of referral_service/devstack/hapi_server.py."""
    hapi = SERVICES["hapi"]
    assert hapi["build"] == "./hapi_test_server"
    dockerfile = (ROOT / "hapi_test_server" / "Dockerfile").read_text()
    for built_from_our_sources in ("COPY pom.xml", "COPY src", "mvn "):
        assert built_from_our_sources in dockerfile
    assert "-Xmx" not in dockerfile, "the heap is compose's JAVA_TOOL_OPTIONS, as the launcher's"
    assert hapi["command"] == hapi_server.settings_options(_mounted("hapi", hapi_server.POSTGRES_SETTINGS))
    db = _env("hapi-db")
    database = hapi_server.HapiDatabase(
        jdbc_url=f"jdbc:postgresql://hapi-db:5432/{db['POSTGRES_DB']}",
        username=db["POSTGRES_USER"],
        password=db["POSTGRES_PASSWORD"],
    )
    java_options = " ".join(hapi_server.jvm_options(hapi_server.DEFAULT_HEAP))
    assert _env("hapi") == {**database.environment(), "JAVA_TOOL_OPTIONS": java_options}
    assert hapi["depends_on"]["hapi-db"] == {"condition": "service_healthy"}


def test_the_hapi_settings_file_selects_postgresql_from_the_variables_the_launchers_set() -> None:
    settings = yaml.safe_load(hapi_server.POSTGRES_SETTINGS.read_text())
    datasource = settings["spring"]["datasource"]
    assert datasource["driver-class-name"] == "org.postgresql.Driver"
    dialect = settings["spring"]["jpa"]["properties"]["hibernate.dialect"]
    assert dialect == "ca.uhn.fhir.jpa.model.dialect.HapiFhirPostgresDialect"
    # Spring resolves ${hapi.db.url} from HAPI_DB_URL in the environment, and so on.
    placeholders = re.findall(r"\$\{([\w.]+)(?::[^}]*)?\}", hapi_server.POSTGRES_SETTINGS.read_text())
    variables = {name.upper().replace(".", "_") for name in placeholders}
    assert variables == set(hapi_server.HapiDatabase(jdbc_url="jdbc:postgresql://h/d", username="u").environment())


def _pinned_temporal_version() -> str:
    go_mod = (temporal_cluster.CONFIG_FILE.parents[1] / "go.mod").read_text()
    [version] = re.findall(r"^\s*go\.temporal\.io/server v(\S+)", go_mod, re.MULTILINE)
    return str(version)


def test_temporal_runs_the_pinned_version_as_the_script_does_one_service_per_container() -> None:
    """Each container runs ``temporal-server`` with temporal_cluster.py's arguments on the same mounted config."""
    for compose_name, name in TEMPORAL_SERVICES.items():
        service = SERVICES[compose_name]
        assert service["image"] == f"temporalio/server:{_pinned_temporal_version()}"
        config_file = _mounted(compose_name, temporal_cluster.CONFIG_FILE)
        # The entrypoint hands the command over whole: `exec temporal-server "$@"`.
        assert service["entrypoint"][-2].endswith('exec temporal-server "$$@"')
        assert service["command"] == temporal_cluster.server_arguments(config_file, name)
        assert service["depends_on"]["temporal-schema"] == {"condition": "service_completed_successfully"}
    for job in ("temporal-schema", "temporal-namespace"):
        assert SERVICES[job]["image"] == f"temporalio/admin-tools:{_pinned_temporal_version()}"


def test_the_temporal_containers_set_every_variable_the_config_template_needs() -> None:
    """Variables the template gives a default keep it, in compose as in the script; the rest must be set, the
    same in every container (each finds the other services' ports in its own config), and nothing else."""
    template = temporal_cluster.CONFIG_FILE.read_text()
    read = re.findall(r'env "(\w+)"', template)
    defaulted = re.findall(r'default "[^"]*" \(env "(\w+)"\)', template)
    needed = {name for name in read if read.count(name) > defaulted.count(name)}
    assert {"POSTGRES_SEEDS", "POSTGRES_USER", "TEMPORAL_BROADCAST_ADDRESS"} <= needed, "the parse missed some"
    environments = [_env(name) for name in TEMPORAL_SERVICES]
    assert all(env == environments[0] for env in environments)
    for name in TEMPORAL_SERVICES:
        exported = re.findall(r"export (\w+)=", SERVICES[name]["entrypoint"][-2])
        assert needed <= {*_env(name), *exported}, f"{name} leaves {needed - {*_env(name), *exported}} unset"
        assert set(_env(name)) <= set(read), f"{name} sets what the template does not read"
    # Reachable from the other containers: bound to every interface (the entrypoint exports the address to
    # broadcast, without which the server refuses that).
    assert ipaddress.ip_address(environments[0]["BIND_ON_IP"]).is_unspecified
    assert environments[0]["POSTGRES_SEEDS"] == "temporal-db"


def test_the_schema_job_sets_up_the_databases_and_schemas_the_script_does() -> None:
    script = SERVICES["temporal-schema"]["command"][0]
    schemas = dict(re.findall(r"--db (\w+) update-schema --schema-name (\S+?);?(?:\s|$)", script))
    assert schemas == temporal_cluster.SCHEMAS


def test_host_ports_do_not_clash_and_the_temporal_ui_leaves_8080_to_hapi() -> None:
    ports = [port for service in SERVICES.values() for port in _host_ports(service)]
    assert len(ports) == len(set(ports)), ports
    assert _host_ports(SERVICES["hapi"]) == ["8080"]
    assert _host_ports(SERVICES["temporal-ui"]) == ["8233"]
    assert _host_ports(SERVICES["api"]) == ["8000"]


def test_databases_and_servers_have_health_checks_and_named_volumes() -> None:
    for name in ("temporal-db", "hapi-db", "api", "worker"):
        assert "healthcheck" in SERVICES[name], f"{name} has no health check"
    # The server image has no CLI to probe itself: the namespace job waits for the cluster, and the API and the
    # worker wait for that job.
    assert "until temporal operator cluster health " in SERVICES["temporal-namespace"]["command"][0]
    for name in ("api", "worker"):
        assert SERVICES[name]["depends_on"]["temporal-namespace"] == {"condition": "service_completed_successfully"}
    assert "/healthz" in " ".join(SERVICES["api"]["healthcheck"]["test"])
    assert "/readyz" in " ".join(SERVICES["worker"]["healthcheck"]["test"]), "the worker reports readiness"
    databases = ("temporal-db", "hapi-db", "service-db")
    volumes = [v.split(":")[0] for name in databases for v in SERVICES[name]["volumes"]]
    assert volumes == list(databases)
    assert set(COMPOSE["volumes"]) == set(volumes)


def test_the_namespace_job_registers_exactly_the_search_attributes_the_workflows_use() -> None:
    script = " ".join(SERVICES["temporal-namespace"]["command"])
    registered = dict(re.findall(r"--name (\w+) --type (\w+)", script))
    expected = {key.name: CLI_TYPE[key.indexed_value_type.name] for key in search_attributes.ALL}
    assert registered == expected


# What an operator exports before `docker compose up` for each variable the file requires (``${VAR:?...}``).
OPERATOR_ENV = {
    "IOP_CODEC_KEYS": json.dumps({"active": "k1", "keys": {"k1": KeyRing.new_key()}}),
    "IOP_AUTH_ISSUER": "https://login.example-health.org/realms/iop",
    "IOP_AUTH_JWKS_URL": "https://login.example-health.org/realms/iop/protocol/openid-connect/certs",
    "IOP_SERVICE_DB_PASSWORD": "a-password-from-the-operator",
}


def _interpolated(value: str) -> str:
    """Compose's ``${VAR:?message}`` (the operator's value) and ``${VAR:-default}`` (the default), wherever
    they stand in the value."""
    value = re.sub(r"\$\{(\w+):\?[^}]*\}", lambda required: OPERATOR_ENV[required.group(1)], value)
    return re.sub(r"\$\{\w+:-([^}]*)\}", lambda defaulted: defaulted.group(1), value)


@pytest.mark.parametrize("role", ["api", "worker"])
def test_api_and_worker_settings_load_and_reach_the_compose_services(
    role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = SERVICES[role]
    with pytest.raises(SystemExit) as help_shown:
        main([*service["command"], "--help"])
    assert help_shown.value.code == 0, f"`referral-service {service['command'][0]}` is not a command"
    env = _env(role)
    read = {f"IOP_{name.upper()}" for name in Settings.model_fields} | {"IOP_CODEC_KEYS"}
    read |= {f"IOP_AUTH_{name.upper()}" for name in AuthSettings.model_fields}
    assert {k for k in env if k.startswith("IOP_")} <= read, "a variable the settings do not read"
    assert env["IOP_CODEC_KEYS"].startswith("${IOP_CODEC_KEYS:?"), "the key ring must come from the environment"
    # The settings file scripts/deployed.sh reads too.
    assert env["IOP_CONFIG"] == _mounted(role, deployed.SERVICE_SETTINGS)
    for var, value in env.items():
        monkeypatch.setenv(var, _interpolated(value))
    monkeypatch.setenv("IOP_CONFIG", str(deployed.SERVICE_SETTINGS))

    settings = load_settings()

    host, port = settings.temporal_address.split(":")
    assert host in SERVICES
    assert port in [p.split(":")[-1] for p in SERVICES[host]["ports"]]
    [source] = settings.sources
    assert (source.base_url.host, source.base_url.port) == ("hapi", 8080)
    assert settings.codec is not None
    assert settings.codec.active == "k1"
    assert settings.auth is not None
    assert settings.auth.issuer == OPERATOR_ENV["IOP_AUTH_ISSUER"]
    assert settings.metrics_address == "0.0.0.0:9464", "Prometheus must reach each service on the compose network"
    assert settings.database().endswith("@service-db:5432/iop_service")
    health_port = settings.api_port if role == "api" else settings.worker_health_port
    probe = " ".join(service["healthcheck"]["test"])
    assert f"http://127.0.0.1:{health_port}/" in probe, "the health check probes where the process serves health"


def test_a_placeholder_key_ring_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOP_CODEC_KEYS", json.dumps({"active": "k1", "keys": {"k1": "REPLACE-WITH-A-REAL-KEY"}}))
    with pytest.raises(ValueError, match="codec key 'k1'") as refused:
        load_settings()
    assert "REPLACE-WITH-A-REAL-KEY" not in str(refused.value)
