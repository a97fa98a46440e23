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
    """Round-trip through the R4B model: a mapper can never hand the EHR structurally invalid JSON.

    Empty elements are dropped first (FHIR forbids them, and an EHR refuses the write): a reference to an
    order that has neither an id the EHR knows nor an identifier is left out rather than sent empty."""
    model = get_fhir_model_class(resource["resourceType"]).model_validate(_pruned(resource))
    out: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return out


def _pruned(value: Any) -> Any:
    """``value`` without empty objects and lists, at any depth."""
    if isinstance(value, dict):
        kept = {key: _pruned(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in ({}, [])}
    if isinstance(value, list):
        return [item for item in (_pruned(i) for i in value) if item not in ({}, [])]
    return value
