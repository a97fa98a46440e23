"""Our HAPI test server on PostgreSQL (deploy/hapi/postgres.yaml, as docker-compose runs it): request validation
as on H2, conditional creates found by identifier, and the data still there after a restart on the database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from referral_service.devstack import hapi_server
from referral_service.devstack.postgres_server import PostgresServer
from referral_service.devstack.process import ManagedProcess, free_port
from referral_service.ehr import FhirClient, SourceConfig, ValidationError

pytestmark = pytest.mark.integration


class HapiOnPostgres:
    """One HAPI at a time on one PostgreSQL database; ``restart`` brings up a new process on the same data."""

    def __init__(self, database: hapi_server.HapiDatabase, log_path: Path) -> None:
        self.database, self.log_path = database, log_path
        self.process, self.base_url = self._start()

    def _start(self) -> tuple[ManagedProcess, str]:
        jar = hapi_server.build_jar()
        return hapi_server.start(jar=jar, port=free_port(), log_path=self.log_path, database=self.database)

    def restart(self) -> None:
        self.process.stop()
        self.process, self.base_url = self._start()

    def client(self) -> FhirClient:
        return FhirClient(SourceConfig(id="hapi-postgres", base_url=self.base_url, timeout_seconds=120))


@pytest.fixture(scope="session")
def hapi_on_postgres(postgres: PostgresServer, server_logs: Path) -> Iterator[HapiOnPostgres]:
    postgres.create_database("hapi")
    hapi = HapiOnPostgres(hapi_server.HapiDatabase.on(postgres, "hapi"), server_logs / "hapi-postgres.log")
    yield hapi
    hapi.process.stop()


def _task(system: str, value: str) -> dict[str, object]:
    return {
        "resourceType": "Task",
        "identifier": [{"system": system, "value": value}],
        "status": "requested",
        "intent": "order",
        "description": "Receipt of a referral",
    }


async def test_an_invalid_resource_is_refused_with_422(hapi_on_postgres: HapiOnPostgres) -> None:
    async with hapi_on_postgres.client() as fhir:
        with pytest.raises(ValidationError) as refused:
            await fhir.create({**_task(f"urn:uuid:{uuid.uuid4()}", "bad"), "status": "not-a-task-status"})
    assert refused.value.status == 422


async def test_a_conditional_create_is_found_by_identifier_and_not_made_twice(
    hapi_on_postgres: HapiOnPostgres,
) -> None:
    system = f"urn:uuid:{uuid.uuid4()}"
    criteria = f"identifier={system}|receipt"
    async with hapi_on_postgres.client() as fhir:
        first = await fhir.create_if_none_exist(_task(system, "receipt"), criteria)
        again = await fhir.create_if_none_exist(_task(system, "receipt"), criteria)
        found = await fhir.search("Task", {"identifier": f"{system}|receipt"})
    assert (first.created, again.created) == (True, False)
    assert [task["id"] for task in found] == [first.id] == [again.id]


async def test_the_data_survives_a_restart_on_the_same_database(hapi_on_postgres: HapiOnPostgres) -> None:
    system = f"urn:uuid:{uuid.uuid4()}"
    async with hapi_on_postgres.client() as fhir:
        written = await fhir.create_if_none_exist(_task(system, "kept"), f"identifier={system}|kept")

    hapi_on_postgres.restart()

    async with hapi_on_postgres.client() as fhir:
        found = await fhir.search("Task", {"identifier": f"{system}|kept"})
    assert [task["id"] for task in found] == [written.id]
