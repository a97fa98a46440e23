"""Incoming referral: a ServiceRequest (alone, with contained resources, or in a Bundle) to a ``Referral``.

Every problem is collected as an OperationOutcome issue naming the element at fault; nothing is guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from fhir_mappings import codes
from fhir_mappings.ehr_lookups import FoundInEhr, Lookups, identifiers_of
from fhir_mappings.outcomes import (
    OutcomeIssue,
    UnusableReferral,
    business_rule,
    invalid,
    required,
    value,
)
from fhir_mappings.performer import Addressed, Addressee, addressed_to, performer_lookups
from fhir_mappings.referral_kind import kind_issue
from fhir_mappings.resolve import (
    ResourceIndex,
    context_base,
    local_reference,
    reference_type,
    resolved_ref,
    to_ref,
)
from referral_service.domain.program import ReferralCodes
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
_ALL_REQUESTS = "Bundle.entry.resource.ofType(ServiceRequest)"
_NOT_OURS = "the referral is addressed to another performer, not this program"
_NOT_NAMED = "the referral does not name this program as its performer"
# A performer nobody can resolve on push: the sender chose this endpoint, so the referral is taken.
_UNRESOLVED = OutcomeIssue(
    severity="warning",
    code="not-found",
    diagnostics="the performer cannot be resolved here; the referral is taken as addressed to this program",
    expression=["ServiceRequest.performer"],
)


def acceptable_for_intake(status: str) -> bool:
    """Only an active ServiceRequest starts a referral (``revoked`` later means cancellation)."""
    return status == "active"


@dataclass(frozen=True)
class RequestEntry:
    """One ServiceRequest of a submission, with where it sits (its fullUrl, when in a Bundle)."""

    resource: dict[str, Any]
    full_url: str | None = None


@dataclass(frozen=True)
class Submission:
    """A structurally valid submission: its ServiceRequest(s) and every resource it carries, indexed."""

    requests: list[RequestEntry]
    index: ResourceIndex


@dataclass(frozen=True)
class Taken:
    """The referral(s) a submission makes, and warnings for the sender (taken, but not as it should be)."""

    referrals: list[Referral]
    warnings: list[OutcomeIssue] = field(default_factory=list)


@dataclass(frozen=True)
class IntakeRules:
    """Who the program is to referrers, what counts as a referral, and which EHR sent it."""

    source_id: str
    source_base_url: str | None = None
    addressee: Addressee | None = None  # None: performers are not judged (replaying a known referral)
    codes: ReferralCodes = field(default_factory=ReferralCodes)
    addressed_only: bool = False  # poll and subscription: only what positively names the program


def read_submission(payload: dict[str, Any]) -> Submission:
    """Structural checks of a ServiceRequest or a Bundle; raise ``UnusableReferral`` naming each element."""
    if _deeper_than(payload, MAX_DEPTH):  # validation recurses per level: refuse before it runs out of stack
        raise UnusableReferral([invalid(f"the resource is nested more than {MAX_DEPTH} levels deep", "")])
    issues: list[OutcomeIssue] = []
    requests, index = _locate(payload, issues)
    if payload.get("resourceType") == "ServiceRequest":  # a Bundle's entries were schema-checked in _locate
        issues += _schema_issues(payload, "ServiceRequest")
        contained_resources = payload.get("contained") or []
        for position, contained in enumerate(contained_resources if isinstance(contained_resources, list) else []):
            where = f"ServiceRequest.contained[{position}]"
            issues += (
                _schema_issues(contained, where) if isinstance(contained, dict) else [invalid("not a resource", where)]
            )
    if issues or not requests:
        raise UnusableReferral(issues)
    return Submission(requests, index)


def lookups_for(submission: Submission, rules: IntakeRules, found: FoundInEhr) -> Lookups:
    """What the source EHR must be asked before the submission can be judged (beyond ``found``)."""
    wanted = Lookups()
    base = rules.source_base_url
    for entry in submission.requests:
        sr, index = entry.resource, submission.index
        relative_to = context_base(entry.full_url, base)
        wanted |= performer_lookups(sr, index, found, base)
        for element in ("subject", "requester"):
            wanted |= _reference_lookups(sr.get(element), index, base, relative_to)
        wanted |= _identity_lookups(sr, _own_local_id(sr, entry.full_url, base))
    return wanted.without(found)


def referrals_from_fhir(
    submission: Submission, rules: IntakeRules, *, found: FoundInEhr | None = None, received_at: datetime | None = None
) -> Taken:
    """The referral(s) a submission makes, or ``UnusableReferral`` with every issue found."""
    found = found or FoundInEhr()
    chosen, warnings, issues = _choose(submission, rules, found)
    referrals: dict[Identifier, Referral] = {}
    for entry in chosen:
        built = _build(entry, submission.index, rules, found, received_at, issues, warnings)
        if built is not None and referrals.setdefault(built.placer_identifier, built) != built:
            issues.append(business_rule("two different ServiceRequests carry the same identifier", _ALL_REQUESTS))
    if len({r.patient.ref for r in referrals.values()}) > 1:
        issues.append(business_rule("ServiceRequests addressed to the program name different patients", _ALL_REQUESTS))
    if issues or not referrals:
        raise UnusableReferral(issues)
    noted = [w.diagnostics for w in warnings]
    return Taken([r.model_copy(update={"warnings": noted}) for r in referrals.values()], warnings)


def referral_from_fhir(
    payload: dict[str, Any],
    *,
    source_id: str,
    program_org: ResourceRef | None = None,
    received_at: datetime | None = None,
    source_base_url: str | None = None,
) -> Referral:
    """The one referral of a submission, judged without asking the EHR (a known referral replayed)."""
    addressee = Addressee((program_org.identifier,)) if program_org and program_org.identifier else None
    rules = IntakeRules(source_id=source_id, source_base_url=source_base_url, addressee=addressee)
    taken = referrals_from_fhir(read_submission(payload), rules, received_at=received_at)
    return taken.referrals[0]


def _choose(
    submission: Submission, rules: IntakeRules, found: FoundInEhr
) -> tuple[list[RequestEntry], list[OutcomeIssue], list[OutcomeIssue]]:
    """The ServiceRequest(s) addressed to the program, warnings, and issues refusing the submission."""
    verdicts = [
        (entry, _addressed(entry, submission.index, rules, found), kind_issue(entry.resource, rules.codes))
        for entry in submission.requests
    ]
    if len(verdicts) == 1:
        entry, verdict, kind = verdicts[0]
        issues = [kind] if kind else []
        if verdict == Addressed.ELSEWHERE:
            issues.append(business_rule(_NOT_OURS, "ServiceRequest.performer"))
        elif rules.addressed_only and verdict != Addressed.PROGRAM:
            issues.append(business_rule(_NOT_NAMED, "ServiceRequest.performer"))
        return [entry], [_UNRESOLVED] if verdict == Addressed.UNKNOWN else [], issues
    # A document with several orders (OT, PT, the IOP referral) is for several providers: only those that
    # name the program are ours, whatever the route.
    ours = [e for e, verdict, kind in verdicts if verdict == Addressed.PROGRAM and kind is None]
    if ours:
        return ours, [], []
    none_ours = f"none of the {len(verdicts)} ServiceRequests is addressed to this program"
    return [], [], [business_rule(none_ours, _ALL_REQUESTS)]


def _addressed(entry: RequestEntry, index: ResourceIndex, rules: IntakeRules, found: FoundInEhr) -> Addressed:
    if rules.addressee is None:
        return Addressed.PROGRAM
    return addressed_to(entry.resource, index, found, rules.addressee, rules.source_base_url)


def _locate(payload: dict[str, Any], issues: list[OutcomeIssue]) -> tuple[list[RequestEntry], ResourceIndex]:
    index = ResourceIndex()
    rtype = payload.get("resourceType")
    if rtype == "ServiceRequest":
        if not isinstance(payload.get("contained") or [], list):
            issues.append(invalid("contained must be a list of resources", "ServiceRequest.contained"))
            return [RequestEntry(payload)], index
        for contained in payload.get("contained") or []:
            if isinstance(contained, dict) and contained.get("id"):
                index.add(contained, f"#{contained['id']}")
        return [RequestEntry(payload)], index
    if rtype != "Bundle":
        issues.append(invalid("a referral is a ServiceRequest or a Bundle holding one", f"{rtype or 'Resource'}"))
        return [], index
    if not isinstance(payload.get("type"), str) or payload["type"] not in BUNDLE_TYPES:
        issues.append(value("the Bundle type must be transaction or collection", "Bundle.type"))
    entries = payload.get("entry") or []
    if not isinstance(entries, list):
        issues.append(invalid("Bundle.entry must be a list of entries", "Bundle.entry"))
        return [], index
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
        for contained in resource.get("contained") or [] if isinstance(resource.get("contained"), list) else []:
            if isinstance(contained, dict) and contained.get("id") and resource.get("resourceType") == "ServiceRequest":
                index.add(contained, f"#{contained['id']}")
        if resource.get("resourceType") == "ServiceRequest":
            requests.append(RequestEntry(resource, full_url))
    if not requests:
        issues.append(required("the Bundle holds no ServiceRequest", _ALL_REQUESTS))
    return requests, index


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
    entry: RequestEntry,
    index: ResourceIndex,
    rules: IntakeRules,
    found: FoundInEhr,
    received_at: datetime | None,
    issues: list[OutcomeIssue],
    warnings: list[OutcomeIssue],
) -> Referral | None:
    sr, base = entry.resource, rules.source_base_url
    relative_to = context_base(entry.full_url, base)
    key = _key_identifier(entry, issues)
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
    patient = _patient(sr, index, found, base, relative_to, issues, warnings)
    authored = _checked_datetime(sr.get("authoredOn"), "ServiceRequest.authoredOn", issues)
    discharge = _discharge(sr, index, issues)
    _check_dates(authored, discharge, received_at, issues)
    if issues or key is None or patient is None:
        return None
    return Referral(
        source_id=rules.source_id,
        service_request=_service_request_ref(entry, key, found, base, warnings),
        placer_identifier=key,
        status=str(status),
        intent=str(intent),
        priority=sr.get("priority"),
        authored_on=authored,
        patient=patient,
        requester=_written_ref(sr.get("requester"), index, found, base, relative_to),
        requester_organization=_requester_organization(sr, index),
        performer=to_ref((sr.get("performer") or [None])[0]),
        codes=_codings(sr.get("code")),
        reasons=_reasons(sr, index),
        discharge=discharge,
        coverage=[r for r in (to_ref(c, "Coverage") for c in sr.get("insurance") or []) if r],
        note=" ".join(n.get("text", "") for n in sr.get("note") or []) or None,
    )


def _key_identifier(entry: RequestEntry, issues: list[OutcomeIssue]) -> Identifier | None:
    """The placer's order number when there is one (PLAC first, then one with a system, then one without:
    the key is scoped to the source anyway), else the ServiceRequest's id or its entry's fullUrl."""
    sr = entry.resource
    raw = [i for i in sr.get("identifier") or [] if isinstance(i, dict)]
    placer = [i for i in raw if any(c.get("code") == "PLAC" for c in (i.get("type") or {}).get("coding") or [])]
    usable = identifiers_of({"identifier": placer}) + identifiers_of({"identifier": raw})
    usable.sort(key=lambda i: i.system is None)  # stable: PLAC before others, with a system before without
    if usable:
        return usable[0]
    if isinstance(sr.get("id"), str):
        return Identifier(system=codes.SOURCE_RESOURCE_SYSTEM, value=f"ServiceRequest/{sr['id']}")
    if entry.full_url:
        return Identifier(system=codes.SOURCE_RESOURCE_SYSTEM, value=entry.full_url)
    issues.append(
        required(
            "an identifier (or a resource id) is required: it is the referral's key, so a resubmission finds it",
            "ServiceRequest.identifier",
        )
    )
    return None


def _patient(
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
    ref = _subject_ref(subject, resolved, index, found, base, relative_to, issues, warnings)
    if ref is None:
        return None
    resolved = resolved or {}
    name = (resolved.get("name") or [{}])[0]
    return PatientDetails(
        ref=ref,
        identifiers=[i for i in identifiers_of(resolved) if i.system],
        family=name.get("family"),
        given=[given for given in name.get("given") or [] if isinstance(given, str)],
        birth_date=_date(resolved.get("birthDate")),
        gender=resolved.get("gender"),
    )


def _subject_ref(
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
    if own is not None and found.read(own) is not None:
        return logical.model_copy(update={"id": own.split("/")[1]})
    if own is not None and not found.absent(own):  # nobody asked the EHR: its own id stands
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


def _service_request_ref(
    entry: RequestEntry, key: Identifier, found: FoundInEhr, base: str | None, warnings: list[OutcomeIssue]
) -> ResourceRef:
    index = ResourceIndex()
    index.add(entry.resource, entry.full_url)
    ref = _linked(entry.resource, "ServiceRequest", index, found, base, warnings, "ServiceRequest.identifier")
    if ref.id is None and ref.identifier is None and key.system != codes.SOURCE_RESOURCE_SYSTEM:
        return ref.model_copy(update={"identifier": key})
    return ref


def _written_ref(
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


def _own_local_id(resource: dict[str, Any], full_url: str | None, base: str | None) -> str | None:
    """``Type/id`` of a carried resource in the source EHR: its fullUrl on the source's base (or relative),
    or, for a resource sent alone or in a Bundle without fullUrls, its own id."""
    if full_url:
        return local_reference(full_url, base)
    rtype, rid = resource.get("resourceType"), resource.get("id")
    return f"{rtype}/{rid}" if isinstance(rid, str) and isinstance(rtype, str) else None


def _carried_local_id(resource: dict[str, Any], index: ResourceIndex, base: str | None) -> str | None:
    """A contained resource's id is local to its container: it names nothing in the EHR."""
    return None if id(resource) in index.contained else _own_local_id(resource, index.full_url(resource), base)


def _reference_lookups(reference: Any, index: ResourceIndex, base: str | None, relative_to: str | None) -> Lookups:
    """A literal reference the submission does not carry is read; a carried resource is found by identity."""
    if not isinstance(reference, dict):
        return Lookups()
    carried = index.resolve(reference)
    if carried is None:
        local = local_reference(reference.get("reference"), base, relative_to)
        logical = {"resourceType": reference.get("type"), "identifier": [reference.get("identifier")]}
        if local is None and isinstance(reference.get("identifier"), dict) and isinstance(reference.get("type"), str):
            return _identity_lookups(logical, None)
        return Lookups(reads=frozenset({local})) if local else Lookups()
    return _identity_lookups(carried, _carried_local_id(carried, index, base))


def _identity_lookups(resource: dict[str, Any], own: str | None) -> Lookups:
    rtype = str(resource.get("resourceType"))
    searches = frozenset((rtype, i.token) for i in identifiers_of(resource))
    return Lookups(reads=frozenset({own}) if own else frozenset(), searches=searches)


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
