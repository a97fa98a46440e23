"""Small builders shared by the outgoing mappers: references, business identifiers, codings."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from referral_service.domain.referral import ResourceRef


def reference(ref: ResourceRef) -> dict[str, Any]:
    """Relative ``Type/id`` for a resource in the EHR we write to; else a logical (identifier) reference.

    A foreign resource (held by another server) is never referenced by its id: the EHR's resource with that
    id would be someone else's."""
    out: dict[str, Any] = {}
    if ref.id is not None and not ref.foreign:
        out["reference"] = f"{ref.resource_type}/{ref.id}"
    elif ref.identifier is not None:
        out["type"] = ref.resource_type
        out["identifier"] = ref.identifier.model_dump(exclude_none=True)
    if ref.display:
        out["display"] = ref.display
    return out


def business_identifier(key: str) -> list[dict[str, str]]:
    """The service's own identifier on everything it writes: a retry finds what an earlier try wrote."""
    return [{"system": RESOURCE_KEY_SYSTEM, "value": key}]


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    out: dict[str, Any] = {"coding": [coding]}
    if text:
        out["text"] = text
    return out


def validated(resource: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through the R4B model: a mapper can never hand the EHR structurally invalid JSON."""
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    out: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return out
