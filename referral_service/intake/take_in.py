"""``Intake.take_in``: the one function every intake route calls (push, the referrer's Task, poll,
subscription), so each gets the same checks, the same duplicate-patient check, the same key and the same
answer shapes.

Read the submission; ask the referring EHR what it names but does not carry (the performer, the patient a
literal reference names, the patient or order a carried resource is in the EHR); judge (who it is for,
whether it is a referral at all, which ServiceRequests to take); start each referral's workflow once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from fhir_mappings import searchset
from fhir_mappings.ehr_lookups import FoundInEhr, held_in
from fhir_mappings.intake_answer import batch_answer, task_with_warnings
from fhir_mappings.outcomes import (
    OutcomeIssue,
    UnusableReferral,
    business_rule,
    http_status,
    not_found,
    operation_outcome,
)
from fhir_mappings.outcomes import transient as transient_issue
from fhir_mappings.performer import Addressee
from fhir_mappings.referral_in import (
    IntakeRules,
    Taken,
    acceptable_for_intake,
    lookups_for,
    referrals_from_fhir,
)
from fhir_mappings.submission import Submission, read_submission
from fhir_mappings.task_intake import focus_request_id, patient_matches
from referral_service.activities.intake_poll import PolledOutcome
from referral_service.domain.program import Program
from referral_service.domain.referral import Referral, referral_key
from referral_service.ehr.client import FhirClient
from referral_service.ehr.errors import FhirError, TransientError
from referral_service.intake.ehr_answers import EhrAnswers
from referral_service.intake.starts import ReferralStarts, Started
from referral_service.intake.task_answer import task_of, task_of_phase
from referral_service.logging import get_logger

# A PractitionerRole's organisation is only known once the role is read: two rounds of questions.
_LOOKUP_ROUNDS = 2
_NO_FOCUS = not_found("the sending EHR holds no ServiceRequest with the focus's id", "Task.focus")
log = get_logger()


class Route(StrEnum):
    PUSH = "push"  # POST /fhir, /fhir/ServiceRequest
    TASK = "task"  # POST /fhir/Task: the referrer's Task, its focus a ServiceRequest in the EHR
    POLL = "poll"
    SUBSCRIPTION = "subscription"


# Poll and subscription find ServiceRequests in the EHR: only those naming the program are ours.
_ADDRESSED_ONLY = frozenset({Route.POLL, Route.SUBSCRIPTION})
# Routes on which the EHR, not a sender, says a referral was revoked.
_REVOKING = {Route.POLL: "revoked by referrer (seen by poll)", Route.SUBSCRIPTION: "revoked by referrer (subscription)"}


@dataclass(frozen=True)
class IntakeAnswer:
    """The answer for the sender (status, FHIR body, headers) and what the intake did."""

    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    started: tuple[Started, ...] = ()
    cancelled: tuple[str, ...] = ()

    @classmethod
    def refused(cls, issues: list[OutcomeIssue], headers: dict[str, str] | None = None) -> IntakeAnswer:
        return cls(http_status(issues), operation_outcome(issues), headers or {})


@dataclass(frozen=True)
class Intake:
    starts: ReferralStarts
    answers: EhrAnswers = field(default_factory=EhrAnswers)

    @property
    def program(self) -> Program:
        return self.starts.program

    async def take_in(
        self, payload: dict[str, Any], *, route: Route, ehr: FhirClient, received_at: datetime
    ) -> IntakeAnswer:
        """Take a submission in from ``ehr`` (the source that sent it, or that holds it)."""
        rules = IntakeRules(
            source_id=ehr.source.id,
            source_base_url=ehr.source.base_url,
            addressee=Addressee(tuple(self.program.identifiers), ehr.source.program_references),
            codes=self.program.referral_codes,
            addressed_only=route in _ADDRESSED_ONLY,
        )
        try:
            submission = read_submission(payload)
            from_ehr = route != Route.PUSH  # a read-back or a search: what it holds, the EHR holds
            found = held_in(payload, ehr.source.base_url) if from_ehr else FoundInEhr()
            taken = referrals_from_fhir(
                submission, rules, found=await self._ask(ehr, submission, rules, found), received_at=received_at
            )
        except UnusableReferral as unusable:
            return IntakeAnswer.refused(unusable.issues)
        except TransientError as error:
            log.warning("intake lookup failed", source_id=ehr.source.id, error=str(error))
            retry = {"Retry-After": str(int(error.retry_after or 30))}
            return IntakeAnswer.refused([transient_issue(f"{ehr.source.id} cannot be asked right now; retry")], retry)
        return await self._start(taken, route, received_at)

    async def take_in_task(self, task: dict[str, Any], *, ehr: FhirClient, received_at: datetime) -> IntakeAnswer:
        """The referrer's Task (Gravity): read the ServiceRequest it focuses on, and its subject, from the EHR."""
        try:
            request_id = focus_request_id(task, ehr.source.base_url)
        except UnusableReferral as unusable:
            return IntakeAnswer.refused(unusable.issues)
        bundle = await self._read_back(ehr, request_id)
        if isinstance(bundle, IntakeAnswer):
            return bundle if bundle.status != 404 else IntakeAnswer.refused([_NO_FOCUS])
        if not patient_matches(task, bundle["entry"][0]["resource"], ehr.source.base_url):
            return IntakeAnswer.refused([business_rule("the Task is for another patient than its focus", "Task.for")])
        return await self.take_in(bundle, route=Route.TASK, ehr=ehr, received_at=received_at)

    async def take_in_stored(
        self, request_id: str, *, route: Route, ehr: FhirClient, received_at: datetime
    ) -> IntakeAnswer:
        """A ServiceRequest the EHR holds (a subscription's notice), read back and taken in."""
        bundle = await self._read_back(ehr, request_id)
        if isinstance(bundle, IntakeAnswer):
            return bundle
        return await self.take_in(bundle, route=route, ehr=ehr, received_at=received_at)

    async def _read_back(self, ehr: FhirClient, request_id: str) -> dict[str, Any] | IntakeAnswer:
        try:
            bundle = await read_back(ehr, request_id)
        except FhirError as error:
            return IntakeAnswer.refused([transient_issue(f"the ServiceRequest cannot be read back: {error}")])
        if bundle is None:
            return IntakeAnswer.refused([not_found(f"ServiceRequest/{request_id} is not in {ehr.source.id}", None)])
        return bundle

    async def take_in_polled(self, bundle: dict[str, Any], ehr: FhirClient, received_at: datetime) -> PolledOutcome:
        """One ServiceRequest a poll found: for the poll activity, which counts what happened."""
        answer = await self.take_in(bundle, route=Route.POLL, ehr=ehr, received_at=received_at)
        if answer.cancelled:
            return "cancelled"
        if any(s.created for s in answer.started):
            return "started"
        if answer.started:
            return "known"
        if answer.status >= 500:
            raise TransientError("the EHR could not be asked about a polled referral", status=answer.status)
        return "skipped"

    async def _ask(self, ehr: FhirClient, submission: Submission, rules: IntakeRules, found: FoundInEhr) -> FoundInEhr:
        for _ in range(_LOOKUP_ROUNDS):
            wanted = lookups_for(submission, rules, found)
            if not wanted:
                break
            found = found.merged(await self.answers.ask(ehr, wanted))
        return found

    async def _start(self, taken: Taken, route: Route, received_at: datetime) -> IntakeAnswer:
        revoked = [r for r in taken.referrals if r.status == "revoked"]
        if revoked and route in _REVOKING:
            keys = [referral_key(r.source_id, r.placer_identifier) for r in revoked]
            cancelled = tuple([k for k in keys if await self.starts.cancel(k, _REVOKING[route])])
            return IntakeAnswer(204, None, cancelled=cancelled)
        inactive = [r.status for r in taken.referrals if not acceptable_for_intake(r.status)]
        if inactive:
            where = "ServiceRequest.status"
            return IntakeAnswer.refused([business_rule(f"a new referral must be active, not {inactive[0]}", where)])
        started = tuple([await self.starts.start(r, received_at) for r in taken.referrals])
        tasks = [
            (task_with_warnings(self._task(r, s), taken.warnings), s.created)
            for r, s in zip(taken.referrals, started, strict=True)
        ]
        if len(tasks) > 1:
            return IntakeAnswer(200, batch_answer(tasks), started=started)
        (body, created), only = tasks[0], started[0]
        headers = {"Location": f"Task/{only.key}"}
        if not created:
            headers["X-Referral-Closed"] = str(only.closed).lower()
        return IntakeAnswer(201 if created else 200, body, headers, started=started)

    def _task(self, referral: Referral, started: Started) -> dict[str, Any]:
        if started.state is not None:
            return task_of(started.state)
        return task_of_phase(
            referral,
            key=started.key,
            program=self.program,
            phase=started.phase,
            received_at=started.received_at,
            changed_at=started.changed_at,
        )


async def read_back(ehr: FhirClient, request_id: str) -> dict[str, Any] | None:
    """A ServiceRequest in the EHR with its Patient, discharge Encounter and requester, as a collection
    Bundle (the shape a pushed referral has); None when the EHR holds no ServiceRequest with that id."""
    params: dict[str, str | list[str]] = {"_id": request_id, "_include": list(searchset.INCLUDES)}
    page = await anext(ehr.search_pages("ServiceRequest", params))
    bundles = searchset.referral_bundles(page)
    return bundles[0] if bundles else None
