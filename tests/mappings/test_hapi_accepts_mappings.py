"""Every outgoing mapper's output, for every cast member, is accepted by HAPI with request validation on.

The referral's own resources are seeded first (HAPI checks that references resolve), then each mapped
resource is written and read back; a resource HAPI's instance validator refuses fails with its message.
"""

from __future__ import annotations

from typing import Any

import pytest

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
    for name, target in TARGETS.items():
        resource_type, resource_id = target.split("/")
        written = await hapi_client.update({**resources.pop(name), "id": resource_id}, if_match_version=None)
        assert (written.resource_type, written.id) == (resource_type, resource_id)
    for name, resource in resources.items():
        written = await hapi_client.create(resource)
        stored = await hapi_client.read(written.resource_type, str(written.id))
        assert stored["identifier"] == resource["identifier"], name
