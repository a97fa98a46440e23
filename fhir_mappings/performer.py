"""Who a referral is for: the ServiceRequest's performer, resolved before it is judged.

A performer may be a literal reference to the EHR's own Organization, a reference carrying only an
identifier, a Bundle entry (``urn:uuid`` or ``fullUrl``), a contained resource, a PractitionerRole (BSeR
requires one) or a HealthcareService. Each is resolved (in the submission, else from the EHR's answers),
then compared with the program's identifiers (its NPI and any others) and with the references the source
EHR uses for the program. Only a performer that positively names someone else is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fhir_mappings.ehr_lookups import FoundInEhr, Lookups, identifiers_of
from fhir_mappings.resolve import ResourceIndex, context_base, local_reference
from referral_service.domain.referral import Identifier

# Elements of a PractitionerRole that say which organisation or service the role works for.
_ROLE_PARENTS = ("organization", "healthcareService")


class Addressed(StrEnum):
    PROGRAM = "program"  # names the program
    ELSEWHERE = "elsewhere"  # positively names someone else
    UNKNOWN = "unknown"  # a performer that cannot be resolved or carries nothing to compare
    NONE = "none"  # no performer at all


@dataclass(frozen=True)
class Addressee:
    """How referrers may name the program: its identifiers, and the source EHR's references for it."""

    identifiers: tuple[Identifier, ...]
    references: tuple[str, ...] = ()


def performer_lookups(
    request: dict[str, Any], index: ResourceIndex, found: FoundInEhr, source_base_url: str | None
) -> Lookups:
    """Performers (and a PractitionerRole's organisation or service) to read from the EHR."""
    reads = set()
    for reference in _references(request.get("performer")):
        resource, local = _resolve(reference, request, index, found, source_base_url)
        if resource is None and local:
            reads.add(local)
        for parent in _role_parents(resource):
            parent_resource, parent_local = _resolve(parent, resource or {}, index, found, source_base_url)
            if parent_resource is None and parent_local:
                reads.add(parent_local)
    return Lookups(reads=frozenset(reads))


def addressed_to(
    request: dict[str, Any],
    index: ResourceIndex,
    found: FoundInEhr,
    addressee: Addressee,
    source_base_url: str | None,
) -> Addressed:
    """The verdict over every performer: one naming the program wins; one naming someone else refuses."""
    verdicts = [
        _judge(r, request, index, found, addressee, source_base_url) for r in _references(request.get("performer"))
    ]
    if not verdicts:
        return Addressed.NONE
    for verdict in (Addressed.PROGRAM, Addressed.ELSEWHERE):
        if verdict in verdicts:
            return verdict
    return Addressed.UNKNOWN


def _judge(
    reference: dict[str, Any],
    request: dict[str, Any],
    index: ResourceIndex,
    found: FoundInEhr,
    addressee: Addressee,
    source_base_url: str | None,
) -> Addressed:
    resource, local = _resolve(reference, request, index, found, source_base_url)
    if local in addressee.references:
        return Addressed.PROGRAM
    named = _carried(reference)
    held = identifiers_of(resource or {})
    for parent in _role_parents(resource):
        parent_resource, parent_local = _resolve(parent, resource or {}, index, found, source_base_url)
        if parent_local in addressee.references:
            return Addressed.PROGRAM
        held += identifiers_of(parent_resource or {}) + _carried(parent)
    if any(_same(i, mine) for i in named + held for mine in addressee.identifiers):
        return Addressed.PROGRAM
    return Addressed.ELSEWHERE if named or held else Addressed.UNKNOWN


def _carried(reference: dict[str, Any]) -> list[Identifier]:
    """The identifier a Reference itself carries (a logical reference)."""
    own = reference.get("identifier")
    return identifiers_of({"identifier": [own]}) if isinstance(own, dict) else []


def _same(a: Identifier, b: Identifier) -> bool:
    return a.value == b.value and (a.system == b.system or a.system is None or b.system is None)


def _resolve(
    reference: dict[str, Any],
    holder: dict[str, Any],
    index: ResourceIndex,
    found: FoundInEhr,
    source_base_url: str | None,
) -> tuple[dict[str, Any] | None, str | None]:
    """The resource a reference in ``holder`` names (in the submission, else as the EHR returned it) and its
    id in the EHR, when it names one there."""
    relative_to = context_base(index.full_url(holder), source_base_url)
    local = local_reference(reference.get("reference"), source_base_url, relative_to)
    resource = index.resolve(reference) or (found.read(local) if local else None)
    return resource, local


def _role_parents(resource: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not resource or resource.get("resourceType") != "PractitionerRole":
        return []
    parents: list[dict[str, Any]] = []
    for element in _ROLE_PARENTS:
        parents += _references(resource.get(element))
    return parents


def _references(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]
