"""Who a referral is about and from: the patient's details and the requester's organisation and name, as the
submission carries them (pure; ``referral_in`` assembles the ``Referral``)."""

from __future__ import annotations

from typing import Any

from fhir_mappings.ehr_lookups import FoundInEhr, identifiers_of
from fhir_mappings.outcomes import OutcomeIssue, invalid, required
from fhir_mappings.referral_dates import date_of
from fhir_mappings.referral_links import subject_ref
from fhir_mappings.resolve import ResourceIndex, reference_type, to_ref
from referral_service.domain.referral import PatientDetails, ResourceRef

# Numbers a patient answers: a work line or an old number is not where staff should call them.
_CALLABLE_USES = ("home", "mobile")


def patient_details(
    sr: dict[str, Any],
    index: ResourceIndex,
    found: FoundInEhr,
    base: str | None,
    relative_to: str | None,
    issues: list[OutcomeIssue],
    warnings: list[OutcomeIssue],
) -> PatientDetails | None:
    subject = sr.get("subject")
    if not subject:
        issues.append(required("the referral needs a subject (the patient)", "ServiceRequest.subject"))
        return None
    local = isinstance(subject, dict) and str(subject.get("reference") or "").startswith(("#", "urn:"))
    if local and index.resolve(subject) is None:
        issues.append(invalid("the subject names a resource the submission does not carry", "ServiceRequest.subject"))
        return None
    if reference_type(subject, index) != "Patient":
        issues.append(invalid("the subject must be a Patient", "ServiceRequest.subject"))
        return None
    resolved = index.resolve(subject)
    ref = subject_ref(subject, resolved, index, found, base, relative_to, issues, warnings)
    if ref is None:
        return None
    resolved = resolved or {}
    name = (resolved.get("name") or [{}])[0]
    return PatientDetails(
        ref=ref,
        identifiers=[i for i in identifiers_of(resolved) if i.system],
        family=name.get("family"),
        given=[given for given in name.get("given") or [] if isinstance(given, str)],
        birth_date=date_of(resolved.get("birthDate")),
        gender=resolved.get("gender"),
        phone=_phone(resolved.get("telecom")),
    )


def _phone(telecom: Any) -> str | None:
    """The first phone number in use home or mobile (``Patient.telecom``), else None."""
    for point in telecom if isinstance(telecom, list) else []:
        if not isinstance(point, dict) or point.get("system") != "phone" or point.get("use") not in _CALLABLE_USES:
            continue
        value = point.get("value")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def requester_organization(sr: dict[str, Any], index: ResourceIndex) -> ResourceRef | None:
    requester = index.resolve(sr.get("requester")) or {}
    if requester.get("resourceType") == "PractitionerRole":
        organization = requester.get("organization")
        return named(to_ref(organization, "Organization"), organization, index)
    if requester.get("resourceType") == "Organization" or reference_type(sr.get("requester"), index) == "Organization":
        return named(to_ref(sr.get("requester"), "Organization"), sr.get("requester"), index)
    return None


def named(ref: ResourceRef | None, reference: dict[str, Any] | None, index: ResourceIndex) -> ResourceRef | None:
    """The reference with the name of the resource the submission carries for it (so staff read who referred,
    not an id); the reference's own display when it carries none."""
    name = _name_of(index.resolve(reference), index)
    if ref is None or name is None:
        return ref
    return ref.model_copy(update={"display": name})


def _name_of(resource: dict[str, Any] | None, index: ResourceIndex) -> str | None:
    """An Organization's name, a Practitioner's (first) HumanName, a PractitionerRole's practitioner's name."""
    kind = (resource or {}).get("resourceType")
    if resource is None or kind not in ("Organization", "Practitioner", "PractitionerRole"):
        return None
    if kind == "Organization":
        return _text(resource.get("name"))
    if kind == "PractitionerRole":
        practitioner = resource.get("practitioner")
        carried = _name_of(index.resolve(practitioner), index)
        return carried or _text((practitioner or {}).get("display") if isinstance(practitioner, dict) else None)
    name = next((n for n in resource.get("name") or [] if isinstance(n, dict)), {})
    if _text(name.get("text")):
        return _text(name.get("text"))
    words = [*(name.get("prefix") or []), *(name.get("given") or []), name.get("family"), *(name.get("suffix") or [])]
    return _text(" ".join(word for word in words if isinstance(word, str) and word.strip()))


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
