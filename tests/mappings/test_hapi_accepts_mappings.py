"""Every outgoing mapper's output, for every cast member, is accepted by HAPI with request validation on.

The referral's own resources are seeded first (HAPI checks that references resolve), then each mapped
resource is written and read back; a resource HAPI's instance validator refuses fails with its message.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from fhir_mappings.write_transaction import Keyed, acceptance_transaction
from referral_service.domain.program import Program
from referral_service.ehr.client import FhirClient
from tests.mappings.cast import CAST, CastMember, mapped_resources, referral_of, submission

# The ids the cast's outputs point at (Task.output, CarePlan.careTeam and .supportingInfo): written first,
# under those ids, in this order.
TARGETS = {
    "careteam": "CareTeam/careteam-1",
    "observation-phq9": "Observation/obs-1",
    "careplan": "CarePlan/plan-1",
    "encounter": "Encounter/enc-1",
}


def _as_transaction(payload: dict[str, Any], base_url: str) -> dict[str, Any] | None:
    """The member's resources as a transaction that keeps their ids (contained ones need no seeding)."""
    if payload["resourceType"] != "Bundle":
        return None
    if payload["type"] == "transaction":
        return payload
    entries = [
        {
            "fullUrl": f"{base_url}/{entry['resource']['resourceType']}/{entry['resource']['id']}",
            "resource": entry["resource"],
            "request": {"method": "PUT", "url": f"{entry['resource']['resourceType']}/{entry['resource']['id']}"},
        }
        for entry in payload["entry"]
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@pytest.mark.parametrize("member", CAST, ids=lambda m: m.name)
async def test_hapi_accepts_every_mapped_resource(
    member: CastMember, program: Program, hapi_client: FhirClient, hapi_base_url: str
) -> None:
    seed = _as_transaction(submission(member), hapi_base_url)
    if seed is not None:
        await hapi_client.transaction(seed)
    resources = mapped_resources(member, program, referral_of(member, program))
    resources.pop("acceptance-transaction")  # its shape is the golden file's; HAPI gets it under fresh keys below
    mapped = dict(resources)
    for name, target in TARGETS.items():
        resource_type, resource_id = target.split("/")
        written = await hapi_client.update({**resources.pop(name), "id": resource_id}, if_match_version=None)
        assert (written.resource_type, written.id) == (resource_type, resource_id)
    for name, resource in resources.items():
        written = await hapi_client.create(resource)
        stored = await hapi_client.read(written.resource_type, str(written.id))
        assert stored["identifier"] == resource["identifier"], name
    fresh = uuid.uuid4().hex  # this run's keys: the cast's are written many times over by the creates above
    bundle = acceptance_transaction(
        *(_rekeyed(mapped[name], f"{fresh}/{name}") for name in ("careteam", "careplan", "task-received"))
    )
    await _accepts_the_acceptance_as_one_transaction(hapi_client, bundle)


def _rekeyed(resource: dict[str, Any], key: str) -> Keyed:
    identifiers = [i for i in resource["identifier"] if i.get("system") != RESOURCE_KEY_SYSTEM]
    return Keyed(key, {**resource, "identifier": [{"system": RESOURCE_KEY_SYSTEM, "value": key}, *identifiers]})


async def _accepts_the_acceptance_as_one_transaction(hapi_client: FhirClient, bundle: dict[str, Any]) -> None:
    """HAPI writes the three conditional updates and replaces each placeholder with the id it gave."""
    answer = await hapi_client.transaction(bundle)
    team_at, plan_at, task_at = (entry["response"]["location"].split("/_history")[0] for entry in answer["entry"])
    assert [place.split("/")[0] for place in (team_at, plan_at, task_at)] == ["CareTeam", "CarePlan", "Task"]
    plan = await hapi_client.read(*plan_at.split("/"))
    task = await hapi_client.read(*task_at.split("/"))
    assert plan["careTeam"] == [{"reference": team_at}]
    assert {"reference": plan_at} in [output["valueReference"] for output in task["output"]]
    again = await hapi_client.transaction(bundle)  # sent again (a retried activity): the same three, updated
    assert [entry["response"]["location"].split("/_history")[0] for entry in again["entry"]] == [
        team_at,
        plan_at,
        task_at,
    ]
