"""Several writes as one FHIR transaction (https://hl7.org/fhir/R4/http.html#trules): each resource a conditional
update on its business identifier, as when it is written alone, and the references between them placeholders
(``urn:uuid:``) the EHR replaces with the ids it finds or assigns. All or nothing: the EHR takes every entry or
none, so a refusal leaves nothing half written.

The acceptance writes the care team, the treatment plan naming it and the referrer's Task listing the plan.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fhir_mappings import codes
from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from fhir_mappings.common import concept, validated

# uuid5's namespace for the placeholders: the same key always gives the same fullUrl, so a retried transaction
# is the same request.
_PLACEHOLDERS = uuid.UUID("5b0c1f53-2f0e-4a55-9f0c-8d0f0b7a0c11")


@dataclass(frozen=True, slots=True)
class Keyed:
    """A resource to write and its business key (the identifier value in ``RESOURCE_KEY_SYSTEM``)."""

    key: str
    resource: dict[str, Any]


def placeholder(key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_PLACEHOLDERS, key)}"


def acceptance_transaction(care_team: Keyed, care_plan: Keyed, task: Keyed) -> dict[str, Any]:
    """The CareTeam, the CarePlan naming it as its care team, and the Task listing the CarePlan among its
    outputs (after the outputs it already lists), as one transaction Bundle."""
    plan = {**care_plan.resource, "careTeam": [{"reference": placeholder(care_team.key)}]}
    listed = {
        "type": concept(codes.OUTPUT_TYPE_SYSTEM, "CarePlan"),
        "valueReference": {"reference": placeholder(care_plan.key)},
    }
    told = {**task.resource, "output": [*task.resource.get("output", []), listed]}
    entries = [care_team, Keyed(care_plan.key, plan), Keyed(task.key, told)]
    return validated({"resourceType": "Bundle", "type": "transaction", "entry": [_entry(e) for e in entries]})


def _entry(keyed: Keyed) -> dict[str, Any]:
    kind = keyed.resource["resourceType"]
    return {
        "fullUrl": placeholder(keyed.key),
        "resource": keyed.resource,
        "request": {
            "method": "PUT",
            "url": f"{kind}?identifier={quote(RESOURCE_KEY_SYSTEM, safe=':/')}|{_token(keyed.key)}",
        },
    }


def _token(value: str) -> str:
    """A token search value inside a URL: FHIR's escapes for its separators, then percent-encoded."""
    escaped = value.replace("\\", "\\\\").replace("|", "\\|").replace(",", "\\,").replace("$", "\\$")
    return quote(escaped, safe="/")
