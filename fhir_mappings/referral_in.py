"""Incoming referral: a ServiceRequest (alone, with contained resources, or in a Bundle) to a ``Referral``.

Every problem is collected as an OperationOutcome issue naming the element at fault; nothing is guessed.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from fhir_mappings import codes
from fhir_mappings.outcomes import OutcomeIssue, UnusableReferral, business_rule, invalid, required, value
from fhir_mappings.resolve import ResourceIndex, reference_type, resolved_ref, to_ref
from referral_service.domain.referral import (
    Coding,
    FromSetting,
    HospitalDischarge,
    Identifier,
    PatientDetails,
    Referral,
    ResourceRef,
)

REQUEST_STATUSES = frozenset({"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"})
# A referral asks the program to do something: an order, or a plan the hospital made for the patient.
REFERRAL_INTENTS = frozenset({"order", "original-order", "reflex-order", "filler-order", "instance-order", "plan"})
PRIORITIES = frozenset({"routine", "urgent", "asap", "stat"})  # a required binding: nothing else means anything
BUNDLE_TYPES = frozenset({"transaction", "collection", "batch", "message", "document"})
MAX_FUTURE = timedelta(days=1)
# FHIR strings may hold tab, CR and LF but no other control character; lone surrogates are not Unicode.
_UNREADABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
MAX_DEPTH = 64  # real referral Bundles nest about 10 levels


def acceptable_for_intake(status: str) -> bool:
    """Only an active ServiceRequest starts a referral (``revoked`` later means cancellation)."""
    return status == "active"


def referral_from_fhir(
    payload: dict[str, Any],
    *,
    source_id: str,
    program_org: ResourceRef | None = None,
    received_at: datetime | None = None,
    source_base_url: str | None = None,
) -> Referral:
    """Map a submission to a Referral, or raise ``UnusableReferral`` with every issue found.

    ``source_base_url``: the referring EHR's FHIR base; a subject it does not hold and the submission does
    not carry cannot be read, so it is refused."""
    if _deeper_than(payload, MAX_DEPTH):  # validation recurses per level: refuse before it runs out of stack
        raise UnusableReferral([invalid(f"the resource is nested more than {MAX_DEPTH} levels deep", "")])
    issues: list[OutcomeIssue] = []
    service_request, index = _locate(payload, issues)
    if service_request is None:
        raise UnusableReferral(issues)
    if service_request is payload:  # a Bundle's entries were schema-checked in _locate already
        issues += _schema_issues(service_request, "ServiceRequest")
        contained_resources = service_request.get("contained") or []
        for position, contained in enumerate(contained_resources if isinstance(contained_resources, list) else []):
            where = f"ServiceRequest.contained[{position}]"
            issues += (
                _schema_issues(contained, where) if isinstance(contained, dict) else [invalid("not a resource", where)]
            )
    if issues:  # the rules below read elements as FHIR types, so structure must be right first
        raise UnusableReferral(issues)
    referral_or_none = _build(service_request, index, source_id, program_org, received_at, issues)
    carried = index.resolve(service_request.get("subject")) is not None  # its details came with the submission
    if referral_or_none is not None and not carried and _elsewhere(referral_or_none.patient.ref, source_base_url):
        issues.append(
            business_rule("the subject is on another FHIR server than the sender's", "ServiceRequest.subject")
        )
    if issues or referral_or_none is None:
        raise UnusableReferral(issues)
    return referral_or_none


def _locate(payload: dict[str, Any], issues: list[OutcomeIssue]) -> tuple[dict[str, Any] | None, ResourceIndex]:
    index = ResourceIndex()
    rtype = payload.get("resourceType")
    if rtype == "ServiceRequest":
        if not isinstance(payload.get("contained") or [], list):
            issues.append(invalid("contained must be a list of resources", "ServiceRequest.contained"))
            return payload, index
        for contained in payload.get("contained") or []:
            if isinstance(contained, dict) and contained.get("id"):
                index.add(contained, f"#{contained['id']}")
        return payload, index
    if rtype != "Bundle":
        issues.append(invalid("a referral is a ServiceRequest or a Bundle holding one", f"{rtype or 'Resource'}"))
        return None, index
    if not isinstance(payload.get("type"), str) or payload["type"] not in BUNDLE_TYPES:
        issues.append(value("the Bundle type must be transaction or collection", "Bundle.type"))
    entries = payload.get("entry") or []
    if not isinstance(entries, list):
        issues.append(invalid("Bundle.entry must be a list of entries", "Bundle.entry"))
        return None, index
    requests = []
    for position, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            issues.append(required("a Bundle entry has no resource", f"Bundle.entry[{position}].resource"))
            continue
        issues += _schema_issues(resource, f"Bundle.entry[{position}].resource")
        full_url = entry.get("fullUrl")
        if full_url is not None and not isinstance(full_url, str):
            issues.append(invalid("fullUrl must be a URI", f"Bundle.entry[{position}].fullUrl"))
            full_url = None
        index.add(resource, full_url)
        if resource.get("resourceType") == "ServiceRequest":
            requests.append(resource)
    if len(requests) != 1:
        issues.append(
            invalid(
                f"the Bundle must hold exactly one ServiceRequest, found {len(requests)}",
                "Bundle.entry.resource.ofType(ServiceRequest)",
            )
        )
        return None, index
    return requests[0], index


def _schema_issues(resource: dict[str, Any], path: str) -> list[OutcomeIssue]:
    """Structural validation with fhir.resources; each error names the element (never its value)."""
    rtype = resource.get("resourceType")
    try:
        model = get_fhir_model_class(str(rtype)) if isinstance(rtype, str) and rtype.isalpha() else None
    except (KeyError, ValueError, AttributeError):  # fhir.resources' ways of saying "no such resource"
        model = None
    if model is None:  # the value itself is never echoed: a sender may have put anything there
        return [invalid("missing or unknown resourceType", f"{path}.resourceType")]
    body = {k: v for k, v in resource.items() if k != "contained"} if rtype == "ServiceRequest" else resource
    prefix = "ServiceRequest" if rtype == "ServiceRequest" else path
    unreadable = _unreadable_strings(body, prefix)
    if unreadable:
        return [invalid("control characters or broken Unicode in a string", where) for where in unreadable]
    try:
        model.model_validate(body)
    except ValidationError as error:
        return [invalid(_describe(err["type"]), _fhirpath(prefix, err["loc"])) for err in error.errors()]
    return []


def _describe(error_type: str) -> str:
    return {"extra_forbidden": "unknown element", "missing": "required element missing"}.get(
        error_type, "invalid value for this element's FHIR type"
    )


def _fhirpath(prefix: str, loc: tuple[Any, ...]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.removesuffix(".__root__")


def _build(
    sr: dict[str, Any],
    index: ResourceIndex,
    source_id: str,
    program_org: ResourceRef | None,
    received_at: datetime | None,
    issues: list[OutcomeIssue],
) -> Referral | None:
    placer = _placer_identifier(sr, issues)
    status, intent = sr.get("status"), sr.get("intent")
    if status not in REQUEST_STATUSES:
        issues.append(value("status must be a FHIR request status", "ServiceRequest.status"))
    if intent not in REFERRAL_INTENTS:
        issues.append(business_rule("a referral's intent must be an order or a plan", "ServiceRequest.intent"))
    if sr.get("priority") is not None and sr["priority"] not in PRIORITIES:
        issues.append(value("priority must be routine, urgent, asap or stat", "ServiceRequest.priority"))
    if sr.get("doNotPerform") is not None and not isinstance(sr["doNotPerform"], bool):
        issues.append(invalid("a FHIR boolean is true or false", "ServiceRequest.doNotPerform"))
    elif sr.get("doNotPerform"):
        issues.append(business_rule("the request says not to perform the service", "ServiceRequest.doNotPerform"))
    patient = _patient(sr, index, issues)
    _check_performer(sr, index, program_org, issues)
    authored = _checked_datetime(sr.get("authoredOn"), "ServiceRequest.authoredOn", issues)
    discharge = _discharge(sr, index, issues)
    _check_dates(authored, discharge, received_at, issues)
    if issues or placer is None or patient is None:
        return None
    return Referral(
        source_id=source_id,
        service_request=to_ref({"reference": f"ServiceRequest/{sr['id']}"} if sr.get("id") else None)
        or ResourceRef(resource_type="ServiceRequest", identifier=placer),
        placer_identifier=placer,
        status=str(status),
        intent=str(intent),
        priority=sr.get("priority"),
        authored_on=authored,
        patient=patient,
        requester=resolved_ref(sr.get("requester"), index),
        requester_organization=_requester_organization(sr, index),
        performer=to_ref((sr.get("performer") or [None])[0]),
        codes=_codings(sr.get("code")),
        reasons=_reasons(sr, index),
        discharge=discharge,
        coverage=[r for r in (to_ref(c, "Coverage") for c in sr.get("insurance") or []) if r],
        note=" ".join(n.get("text", "") for n in sr.get("note") or []) or None,
    )


def _placer_identifier(sr: dict[str, Any], issues: list[OutcomeIssue]) -> Identifier | None:
    usable = [i for i in sr.get("identifier") or [] if i.get("system") and i.get("value")]
    placer = [i for i in usable if any(c.get("code") == "PLAC" for c in (i.get("type") or {}).get("coding") or [])]
    chosen = (placer or usable or [None])[0]
    if chosen is None:
        issues.append(
            required(
                "an identifier with system and value is required: it is the referral's key",
                "ServiceRequest.identifier",
            )
        )
        return None
    return Identifier(system=chosen["system"], value=chosen["value"])


def _patient(sr: dict[str, Any], index: ResourceIndex, issues: list[OutcomeIssue]) -> PatientDetails | None:
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
    resolved = index.resolve(subject) or {}
    ref = resolved_ref(subject, index, "Patient")
    if ref is None or (ref.id is None and ref.identifier is None and not resolved):
        issues.append(invalid("the subject reference cannot be resolved", "ServiceRequest.subject"))
        return None
    name = (resolved.get("name") or [{}])[0]
    identifiers = [
        Identifier(system=i["system"], value=i["value"])
        for i in resolved.get("identifier") or []
        if i.get("system") and i.get("value")
    ]
    return PatientDetails(
        ref=ref,
        identifiers=identifiers,
        family=name.get("family"),
        given=[given for given in name.get("given") or [] if isinstance(given, str)],
        birth_date=_date(resolved.get("birthDate")),
        gender=resolved.get("gender"),
    )


def _check_performer(
    sr: dict[str, Any], index: ResourceIndex, program_org: ResourceRef | None, issues: list[OutcomeIssue]
) -> None:
    performers = [to_ref(p) for p in sr.get("performer") or []]
    if program_org is None or not performers:
        return
    if not any(p is not None and _same(p, program_org) for p in performers):
        issues.append(
            business_rule(
                "the referral is addressed to another performer, not this program", "ServiceRequest.performer"
            )
        )


def _elsewhere(ref: ResourceRef, source_base_url: str | None) -> bool:
    """Whether ``ref`` is an absolute reference outside the source's server (contained and urn refs have no base)."""
    if ref.base_url is None or source_base_url is None:
        return False
    return ref.base_url.rstrip("/") != source_base_url.rstrip("/")


def _same(a: ResourceRef, b: ResourceRef) -> bool:
    if a.identifier is not None and a.identifier == b.identifier:
        return True
    return a.resource_type == b.resource_type and a.id is not None and a.id == b.id


def _requester_organization(sr: dict[str, Any], index: ResourceIndex) -> ResourceRef | None:
    requester = index.resolve(sr.get("requester")) or {}
    if requester.get("resourceType") == "PractitionerRole":
        return to_ref(requester.get("organization"), "Organization")
    if requester.get("resourceType") == "Organization" or reference_type(sr.get("requester"), index) == "Organization":
        return to_ref(sr.get("requester"), "Organization")
    return None


def _discharge(sr: dict[str, Any], index: ResourceIndex, issues: list[OutcomeIssue]) -> HospitalDischarge | None:
    candidates = [sr.get("encounter"), *list(sr.get("supportingInfo") or [])]
    for reference in candidates:
        encounter = index.resolve(reference)
        if encounter is None or encounter.get("resourceType") != "Encounter":
            continue
        period = encounter.get("period") or {}
        start = _checked_datetime(period.get("start"), "Encounter.period.start", issues)
        end = _checked_datetime(period.get("end"), "Encounter.period.end", issues)
        if start and end and end < start:
            issues.append(invalid("the discharge encounter ends before it starts", "Encounter.period"))
        return HospitalDischarge(
            encounter=resolved_ref(reference, index, "Encounter"),
            from_setting=_setting(encounter),
            discharge_date=end.date() if end else None,
        )
    return None


def _setting(encounter: dict[str, Any]) -> FromSetting:
    """inpatient from the class; PHP and residential from a type code or text (no class exists for them)."""
    types = encounter.get("type") or []
    type_codes = {c.get("code") for t in types for c in t.get("coding") or []}
    text = " ".join(
        [t.get("text") or "" for t in types] + [c.get("display") or "" for t in types for c in t.get("coding") or []]
    ).lower()
    if type_codes & codes.PHP_CODES or any(marker in text for marker in codes.PHP_TEXT):
        return "php"
    if any(marker in text for marker in codes.RESIDENTIAL_TEXT):
        return "residential"
    if (encounter.get("class") or {}).get("code") in codes.INPATIENT_CLASSES:
        return "inpatient"
    if (encounter.get("class") or {}).get("code") == "EMER":
        return "emergency"
    return "other"


def _check_dates(
    authored: datetime | None,
    discharge: HospitalDischarge | None,
    received_at: datetime | None,
    issues: list[OutcomeIssue],
) -> None:
    if authored and received_at and authored - received_at > MAX_FUTURE:
        issues.append(business_rule("the referral is authored in the future", "ServiceRequest.authoredOn"))
    if discharge is None or discharge.discharge_date is None:
        return
    if authored and discharge.discharge_date - authored.date() > MAX_FUTURE:
        issues.append(
            business_rule(
                "the hospital discharge is dated after the referral by more than a day",
                "Encounter.period.end",
            )
        )
    if received_at and discharge.discharge_date - received_at.date() > MAX_FUTURE:
        issues.append(business_rule("the hospital discharge date is in the future", "Encounter.period.end"))


def _reasons(sr: dict[str, Any], index: ResourceIndex) -> list[Coding]:
    found = [c for concept in sr.get("reasonCode") or [] for c in _codings(concept)]
    for reference in sr.get("reasonReference") or []:
        condition = index.resolve(reference) or {}
        found += _codings(condition.get("code"))
    return found


def _codings(concept: dict[str, Any] | None) -> list[Coding]:
    return [
        Coding(system=c["system"], code=c["code"], display=c.get("display"))
        for c in (concept or {}).get("coding") or []
        if c.get("system") and c.get("code")
    ]


def _checked_datetime(text: Any, expression: str, issues: list[OutcomeIssue]) -> datetime | None:
    """FHIR JSON dates are strings; pydantic would read a number as a Unix timestamp, so refuse it here."""
    if text is not None and not isinstance(text, str):
        issues.append(invalid("a FHIR dateTime is a string", expression))
    return _datetime(text)


def _datetime(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text) if "T" in text else datetime.fromisoformat(f"{text}T00:00:00+00:00")
    except ValueError:
        return None


def _date(text: Any) -> date | None:
    parsed = _datetime(text)
    return parsed.date() if parsed else None


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether JSON ``value`` nests more than ``limit`` levels (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return False


def _unreadable_strings(value: Any, path: str) -> list[str]:
    """Paths of strings FHIR forbids: control characters other than tab, CR and LF, or lone surrogates."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            stack.extend((child, f"{where}.{key}") for key, child in node.items())
        elif isinstance(node, list):
            stack.extend((child, f"{where}[{position}]") for position, child in enumerate(node))
        elif isinstance(node, str) and _UNREADABLE.search(node):
            found.append(where)
    return sorted(found)
