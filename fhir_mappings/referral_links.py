"""Where a referral's references land in the EHR written to: a literal reference only to a resource the EHR
holds under that id; one carried in the submission or named by identifier, by the one resource the EHR holds
under its identifiers; else by identifier alone, with a warning. A resource on another server's base is never
referenced by its id (the EHR's resource with that id would be someone else's)."""

from __future__ import annotations

from typing import Any

from fhir_mappings import codes
from fhir_mappings.ehr_lookups import FoundInEhr, Lookups, identifiers_of
from fhir_mappings.outcomes import OutcomeIssue, business_rule, invalid
from fhir_mappings.resolve import ResourceIndex, local_reference, resolved_ref, to_ref
from fhir_mappings.submission import RequestEntry
from referral_service.domain.referral import Identifier, ResourceRef


def subject_ref(
    subject: dict[str, Any],
    carried: dict[str, Any] | None,
    index: ResourceIndex,
    found: FoundInEhr,
    base: str | None,
    relative_to: str | None,
    issues: list[OutcomeIssue],
    warnings: list[OutcomeIssue],
) -> ResourceRef | None:
    """The patient as the write-backs will name it: a literal reference only to a patient the EHR holds."""
    where = "ServiceRequest.subject"
    if carried is None:
        ref = to_ref(subject, "Patient")
        local = local_reference(subject.get("reference"), base, relative_to)
        if ref is None or (ref.id is None and ref.identifier is None):
            issues.append(invalid("the subject reference cannot be resolved", where))
            return None
        if ref.id is not None and local is None:
            issues.append(business_rule("the subject is on another FHIR server than the sender's", where))
            return None
        if local is not None and found.absent(local):
            issues.append(business_rule("the sending EHR holds no Patient with this id", where))
            return None
        if ref.id is None and ref.identifier is not None:  # a logical reference: the EHR may know whose it is
            return _linked(
                {"resourceType": "Patient", "identifier": [subject["identifier"]]},
                "Patient",
                index,
                found,
                base,
                warnings,
                where,
                subject.get("display"),
            )
        return ref.model_copy(update={"base_url": None})
    return _linked(carried, "Patient", index, found, base, warnings, where, subject.get("display"))


def _linked(
    resource: dict[str, Any],
    resource_type: str,
    index: ResourceIndex,
    found: FoundInEhr,
    base: str | None,
    warnings: list[OutcomeIssue],
    where: str,
    display: str | None = None,
) -> ResourceRef:
    """A reference to a resource the submission carries: by its id where the EHR holds it under that id, by
    the one resource the EHR holds under its identifiers, else by identifier alone (with a warning)."""
    identifiers = identifiers_of(resource)
    logical = ResourceRef(
        resource_type=resource_type,
        identifier=next((i for i in identifiers if i.system), identifiers[0] if identifiers else None),
        display=display,
    )
    own = _carried_local_id(resource, index, base)
    if own is not None and not found.absent(own):  # held, or nobody asked the EHR: its own id stands
        return logical.model_copy(update={"id": own.split("/")[1]})
    ids = found.ids_for(resource_type, identifiers)
    if ids is not None and len(ids) == 1:
        return logical.model_copy(update={"id": ids.pop()})
    if ids is not None or own is not None:
        several = ids is not None and len(ids) > 1
        warnings.append(
            OutcomeIssue(
                severity="warning",
                code="not-found" if not several else "multiple-matches",
                diagnostics=f"the EHR holds {'several' if several else 'no'} {resource_type} matching this one:"
                " the service refers to it by identifier only, so it will not show under the record's id",
                expression=[where],
            )
        )
    return logical


def service_request_ref(
    entry: RequestEntry, key: Identifier, found: FoundInEhr, base: str | None, warnings: list[OutcomeIssue]
) -> ResourceRef:
    index = ResourceIndex()
    index.add(entry.resource, entry.full_url)
    ref = _linked(entry.resource, "ServiceRequest", index, found, base, warnings, "ServiceRequest.identifier")
    if ref.id is None and ref.identifier is None and key.system != codes.SOURCE_RESOURCE_SYSTEM:
        return ref.model_copy(update={"identifier": key})
    return ref


def written_ref(
    reference: dict[str, Any] | None, index: ResourceIndex, found: FoundInEhr, base: str | None, relative_to: str | None
) -> ResourceRef | None:
    """A reference the Task repeats (the requester): literal only when the EHR may hold it."""
    ref = resolved_ref(reference, index)
    if ref is None or reference is None:
        return None
    local = local_reference(reference.get("reference"), base, relative_to)
    carried = index.resolve(reference)
    if carried is not None and local is None:
        local = _carried_local_id(carried, index, base)
    if ref.id is not None and (local is None or found.absent(local)):
        return ref.model_copy(update={"foreign": True})
    return ref


def own_local_id(resource: dict[str, Any], full_url: str | None, base: str | None) -> str | None:
    """``Type/id`` of a carried resource in the source EHR: its fullUrl on the source's base (or relative),
    or, for a resource sent alone or in a Bundle without fullUrls, its own id."""
    if full_url:
        return local_reference(full_url, base)
    rtype, rid = resource.get("resourceType"), resource.get("id")
    return f"{rtype}/{rid}" if isinstance(rid, str) and isinstance(rtype, str) else None


def _carried_local_id(resource: dict[str, Any], index: ResourceIndex, base: str | None) -> str | None:
    """A contained resource's id is local to its container: it names nothing in the EHR."""
    return None if id(resource) in index.contained else own_local_id(resource, index.full_url(resource), base)


def reference_lookups(reference: Any, index: ResourceIndex, base: str | None, relative_to: str | None) -> Lookups:
    """A literal reference the submission does not carry is read; a carried resource is found by identity."""
    if not isinstance(reference, dict):
        return Lookups()
    carried = index.resolve(reference)
    if carried is None:
        local = local_reference(reference.get("reference"), base, relative_to)
        logical = {"resourceType": reference.get("type"), "identifier": [reference.get("identifier")]}
        if local is None and isinstance(reference.get("identifier"), dict) and isinstance(reference.get("type"), str):
            return identity_lookups(logical, None)
        return Lookups(reads=frozenset({local})) if local else Lookups()
    return identity_lookups(carried, _carried_local_id(carried, index, base))


def identity_lookups(resource: dict[str, Any], own: str | None) -> Lookups:
    rtype = str(resource.get("resourceType"))
    searches = frozenset((rtype, i.token) for i in identifiers_of(resource))
    return Lookups(reads=frozenset({own}) if own else frozenset(), searches=searches)
