"""Incoming referral: a ServiceRequest (alone, with contained resources, or in a Bundle) to a ``Referral``.

Every problem is collected as an OperationOutcome issue naming the element at fault; nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

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
from fhir_mappings.referral_links import (
    identity_lookups,
    own_local_id,
    reference_lookups,
    service_request_ref,
    subject_ref,
    written_ref,
)
from fhir_mappings.resolve import (
    ResourceIndex,
    context_base,
    reference_type,
    resolved_ref,
    to_ref,
)
from fhir_mappings.submission import ALL_REQUESTS, RequestEntry, Submission, read_submission
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
MAX_FUTURE = timedelta(days=1)
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


def lookups_for(submission: Submission, rules: IntakeRules, found: FoundInEhr) -> Lookups:
    """What the source EHR must be asked before the submission can be judged (beyond ``found``)."""
    wanted = Lookups()
    base = rules.source_base_url
    for entry in submission.requests:
        sr, index = entry.resource, submission.index
        relative_to = context_base(entry.full_url, base)
        wanted |= performer_lookups(sr, index, found, base)
        for element in ("subject", "requester"):
            wanted |= reference_lookups(sr.get(element), index, base, relative_to)
        wanted |= identity_lookups(sr, own_local_id(sr, entry.full_url, base))
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
            issues.append(business_rule("two different ServiceRequests carry the same identifier", ALL_REQUESTS))
    if len({r.patient.ref for r in referrals.values()}) > 1:
        issues.append(business_rule("ServiceRequests addressed to the program name different patients", ALL_REQUESTS))
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
    return [], [], [business_rule(none_ours, ALL_REQUESTS)]


def _addressed(entry: RequestEntry, index: ResourceIndex, rules: IntakeRules, found: FoundInEhr) -> Addressed:
    if rules.addressee is None:
        return Addressed.PROGRAM
    return addressed_to(entry.resource, index, found, rules.addressee, rules.source_base_url)


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
        service_request=service_request_ref(entry, key, found, base, warnings),
        placer_identifier=key,
        status=str(status),
        intent=str(intent),
        priority=sr.get("priority"),
        authored_on=authored,
        patient=patient,
        requester=_named(written_ref(sr.get("requester"), index, found, base, relative_to), sr.get("requester"), index),
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
    usable.sort(key=lambda i: i.system is None)  # one with a system first; among equals PLAC first (stable)
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
        birth_date=_date(resolved.get("birthDate")),
        gender=resolved.get("gender"),
        phone=_phone(resolved.get("telecom")),
    )


# Numbers a patient answers: a work line or an old number is not where staff should call them.
_CALLABLE_USES = ("home", "mobile")


def _phone(telecom: Any) -> str | None:
    """The first phone number in use home or mobile (``Patient.telecom``), else None."""
    for point in telecom if isinstance(telecom, list) else []:
        if not isinstance(point, dict) or point.get("system") != "phone" or point.get("use") not in _CALLABLE_USES:
            continue
        value = point.get("value")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _requester_organization(sr: dict[str, Any], index: ResourceIndex) -> ResourceRef | None:
    requester = index.resolve(sr.get("requester")) or {}
    if requester.get("resourceType") == "PractitionerRole":
        organization = requester.get("organization")
        return _named(to_ref(organization, "Organization"), organization, index)
    if requester.get("resourceType") == "Organization" or reference_type(sr.get("requester"), index) == "Organization":
        return _named(to_ref(sr.get("requester"), "Organization"), sr.get("requester"), index)
    return None


def _named(ref: ResourceRef | None, reference: dict[str, Any] | None, index: ResourceIndex) -> ResourceRef | None:
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
