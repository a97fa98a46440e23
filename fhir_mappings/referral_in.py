"""Incoming referral: a ServiceRequest (alone, with contained resources, or in a Bundle) to a ``Referral``.

Every problem is collected as an OperationOutcome issue naming the element at fault; nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
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
from fhir_mappings.referral_dates import check_dates, checked_datetime, hospital_discharge
from fhir_mappings.referral_kind import kind_issue
from fhir_mappings.referral_links import (
    identity_lookups,
    own_local_id,
    reference_lookups,
    service_request_ref,
    written_ref,
)
from fhir_mappings.referral_people import named, patient_details, requester_organization
from fhir_mappings.resolve import (
    ResourceIndex,
    context_base,
    to_ref,
)
from fhir_mappings.submission import ALL_REQUESTS, RequestEntry, Submission, read_submission
from referral_service.domain.program import ReferralCodes
from referral_service.domain.referral import (
    Coding,
    Identifier,
    Referral,
    ResourceRef,
)

REQUEST_STATUSES = frozenset({"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"})
# A referral asks the program to do something: an order, or a plan the hospital made for the patient.
REFERRAL_INTENTS = frozenset({"order", "original-order", "reflex-order", "filler-order", "instance-order", "plan"})
PRIORITIES = frozenset({"routine", "urgent", "asap", "stat"})  # a required binding: nothing else means anything
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
    patient = patient_details(sr, index, found, base, relative_to, issues, warnings)
    authored = checked_datetime(sr.get("authoredOn"), "ServiceRequest.authoredOn", issues)
    discharge = hospital_discharge(sr, index, issues)
    check_dates(authored, discharge, received_at, issues)
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
        requester=named(written_ref(sr.get("requester"), index, found, base, relative_to), sr.get("requester"), index),
        requester_organization=requester_organization(sr, index),
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
