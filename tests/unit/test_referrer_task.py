"""The referrer's Task has one owner: whatever path a referral takes, ``GET /fhir/Task`` (``task_of``) never fails
and always says what the workflow last wrote (``task_request``, the activity's input), along FHIR's Task machine.

Pure: no server. ``Referral`` below changes a real ``ReferralState`` in the order ``workflows/referral.py`` does
(phase moves, decline reason, cancellation recorded then confirmed, discharge, sessions) and "writes" the Task
where the workflow does; hypothesis walks every path, and the named paths below pin each one down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_mappings import task
from fhir_mappings.referral_in import referral_from_fhir
from referral_service.domain.attendance import SessionRecord
from referral_service.domain.discharge import DeclineReason, Discharge, DischargeReason
from referral_service.domain.ehr_writes import EhrWrite
from referral_service.domain.lifecycle import ENDED, TEAM_PHASES, Phase, check_transition
from referral_service.domain.program import SessionKind
from referral_service.domain.referrer_task import Cancellation, can_transition
from referral_service.intake.task_answer import task_of
from referral_service.programs import load_program
from tests.referrals import referral_bundle
from workflows.referral_types import ReferralState
from workflows.referral_writes import task_request

PROGRAM = load_program()
REFERRAL = referral_from_fhir(
    referral_bundle("ada-testpatient-adult-inpatient"),
    source_id="st-marys",
    program_org=PROGRAM.organization,
)
RECEIVED_AT = datetime(2026, 11, 21, 9, tzinfo=UTC)
REASONS = ["patient moved out of state", "revoked by referrer", "Seen elsewhere; no longer needed"]


# What the referrer reads off its Task to learn the outcome. (Its outputs may run ahead of the EHR's copy: a
# session's Encounter is listed from the moment it is written, the EHR's Task at its next update.)
TOLD = ("status", "businessStatus", "statusReason")


def _told(resource: dict[str, Any]) -> tuple[str, str, str | None]:
    reason = resource.get("statusReason", {}).get("text")
    return resource["status"], resource["businessStatus"]["coding"][0]["code"], reason


@dataclass
class Referral:
    """A referral's state, changed as the workflow changes it, with every Task the workflow wrote."""

    state: ReferralState = field(
        default_factory=lambda: ReferralState(
            key="st-marys.SR-1.0123456789", referral=REFERRAL, program=PROGRAM, received_at=RECEIVED_AT
        )
    )
    written: list[dict[str, Any]] = field(default_factory=list)  # each Task resource the activity would send

    # ---- the workflow's steps ----

    def move(self, to: Phase) -> None:
        if to != self.state.phase:
            check_transition(self.state.phase, to)
        self.state.phase = to
        self.read()  # a read between two steps of the workflow never fails either

    def tell_referrer(self) -> None:
        """``_tell_referrer``: the Task as ``task_request`` makes it, along FHIR's machine, mapped as the activity
        maps it."""
        request = task_request(self.state, at=RECEIVED_AT)
        assert can_transition(self.state.task_status, request.status), (self.state.task_status, request.status)
        self.state.task_status = request.status
        resource = task.referral_task(
            request.referral,
            key=request.key,
            owner=request.organization,
            status=request.status,
            business_status=request.business_status,
            status_reason=request.reason,
            outputs=[w.ref() for w in request.outputs],
            authored_on=request.authored_on,
            last_modified=RECEIVED_AT,
        )
        self.written.append(resource)

    def start(self) -> None:
        self.tell_referrer()
        self.move(Phase.SCREENING)

    def waitlist(self) -> None:
        self.move(Phase.WAITLISTED)
        self.tell_referrer()

    def decline(self, reason: DeclineReason) -> None:
        self.state.decline_reason = reason
        self.move(Phase.DECLINED)
        self.tell_referrer()

    def accept(self) -> None:
        self.state.track_id = "adult-mh"
        self.move(Phase.ACCEPTED)
        self.write_plan()
        self.tell_referrer()
        self.move(Phase.INTAKE_SCHEDULED)
        self.tell_referrer()

    def session(self, number: int, *, attended: bool) -> None:
        record = SessionRecord(
            session_id=f"s{number}",
            date=date(2026, 11, 22) + timedelta(days=number),
            kind=SessionKind.GROUP,
            minutes=180,
            attended=attended,
        )
        self.state.sessions = [s for s in self.state.sessions if s.session_id != record.session_id] + [record]
        if attended and self.state.phase == Phase.INTAKE_SCHEDULED:
            self.move(Phase.IN_TREATMENT)
            self.tell_referrer()
        if attended:
            self.state.writes[f"{self.state.key}/encounter/s{number}"] = EhrWrite(
                key=f"{self.state.key}/encounter/s{number}", resource_type="Encounter", id=f"enc-{number}"
            )

    def cancel(self, reason: str, *, requested: bool) -> None:
        self.state.cancellation = Cancellation(reason=reason, requested=requested)
        if requested:
            self.tell_referrer()
            self.read()
        if self.state.phase in TEAM_PHASES:
            self.write_plan()
        self.state.cancellation = self.state.cancellation.model_copy(update={"confirmed": True})
        self.tell_referrer()
        self.move(Phase.CANCELLED)

    def discharge(self, reason: DischargeReason) -> None:
        self.state.discharge = Discharge(reason=reason, date=date(2026, 12, 20))
        self.write_plan()
        self.tell_referrer()
        if reason == DischargeReason.TRANSFERRED:
            self.move(Phase.TRANSFERRED)
            return
        self.move(Phase.DISCHARGED)
        self.move(Phase.AFTERCARE)
        self.read()
        self.move(Phase.CLOSED)

    def write_plan(self) -> None:
        self.state.writes[f"{self.state.key}/careplan"] = EhrWrite(
            key=f"{self.state.key}/careplan", resource_type="CarePlan", id="plan-1"
        )

    # ---- the referrer's read ----

    def read(self) -> tuple[str, str, str | None]:
        return _told(task_of(self.state))

    def settled(self) -> None:
        """Between the workflow's steps, the read says what was last written."""
        read, last = task_of(self.state), self.written[-1]
        assert {k: read.get(k) for k in TOLD} == {k: last.get(k) for k in TOLD}

    @property
    def last_told(self) -> tuple[str, str, str | None]:
        return _told(self.written[-1])


@st.composite
def _paths(draw: st.DrawFn) -> Referral:
    """One referral driven along a path hypothesis picks at each step; checked after every step."""
    referral = Referral()
    referral.start()
    referral.settled()
    sessions = 0
    while referral.state.phase not in ENDED | {Phase.CLOSED}:
        phase = referral.state.phase
        cancel = st.tuples(st.just("cancel"), st.sampled_from(REASONS), st.booleans())
        if phase in (Phase.SCREENING, Phase.WAITLISTED):
            step = draw(
                st.one_of(  # the ending first: hypothesis shrinks towards it
                    st.tuples(st.just("decline"), st.sampled_from(list(DeclineReason))),
                    cancel,
                    st.just(("accept",)),
                    *([st.just(("waitlist",))] if phase == Phase.SCREENING else []),
                )
            )
        else:
            step = draw(
                st.one_of(
                    st.tuples(st.just("discharge"), st.sampled_from(list(DischargeReason))),
                    cancel,
                    *([st.tuples(st.just("session"), st.integers(0, sessions), st.booleans())] if sessions < 6 else []),
                )
            )
        match step:
            case ("accept",):
                referral.accept()
            case ("waitlist",):
                referral.waitlist()
            case ("decline", reason):
                referral.decline(reason)
            case ("cancel", reason, requested):
                referral.cancel(reason, requested=requested)
            case ("session", number, attended):
                referral.session(number, attended=attended)
                sessions += 1
            case ("discharge", reason):
                referral.discharge(reason)
        referral.settled()
    return referral


@settings(max_examples=300, deadline=None)
@given(referral=_paths())
def test_on_every_path_the_task_read_is_what_the_workflow_last_wrote(referral: Referral) -> None:
    assert referral.state.phase in ENDED | {Phase.CLOSED}
    assert referral.last_told[0] in ("completed", "rejected", "cancelled")


def _attended(referral: Referral) -> None:
    referral.session(0, attended=True)


PATHS = {
    "accept, attend, discharge completed, closure": (
        lambda r: (r.accept(), _attended(r), r.discharge(DischargeReason.COMPLETED)),
        Phase.CLOSED,
        ("completed", "fulfillment-completed", None),
    ),
    "accept, never attend, drop out": (
        lambda r: (r.accept(), r.session(0, attended=False), r.discharge(DischargeReason.DROPPED_OUT)),
        Phase.CLOSED,
        ("cancelled", "unattended", "discharged before any attended session (dropped_out)"),
    ),
    "decline": (
        lambda r: r.decline(DeclineReason.NO_CAPACITY),
        Phase.DECLINED,
        ("rejected", "declined", "no_capacity"),
    ),
    "waitlist, then accept and transfer after a session": (
        lambda r: (r.waitlist(), r.accept(), _attended(r), r.discharge(DischargeReason.TRANSFERRED)),
        Phase.TRANSFERRED,
        ("completed", "transferred", None),
    ),
    "transfer before any session": (
        lambda r: (r.accept(), r.discharge(DischargeReason.TRANSFERRED)),
        Phase.TRANSFERRED,
        ("cancelled", "transferred", "discharged before any attended session (transferred)"),
    ),
    "BSeR cancellation in screening": (
        lambda r: r.cancel(REASONS[0], requested=True),
        Phase.CANCELLED,
        ("cancelled", "cancellation-confirmed", REASONS[0]),
    ),
    "Gravity cancellation in treatment": (
        lambda r: (r.accept(), _attended(r), r.cancel(REASONS[2], requested=False)),
        Phase.CANCELLED,
        ("cancelled", "cancellation-confirmed", REASONS[2]),
    ),
    "BSeR cancellation once the intake is scheduled": (
        lambda r: (r.accept(), r.cancel(REASONS[1], requested=True)),
        Phase.CANCELLED,
        ("cancelled", "cancellation-confirmed", REASONS[1]),
    ),
}


@pytest.mark.parametrize("path", list(PATHS))
def test_each_named_path_ends_with_the_task_the_referrer_expects(path: str) -> None:
    drive, phase, told = PATHS[path]
    referral = Referral()
    referral.start()
    drive(referral)
    referral.settled()
    assert referral.state.phase == phase
    assert referral.last_told == told


def test_a_bser_request_is_acknowledged_with_the_status_unchanged_before_it_is_confirmed() -> None:
    referral = Referral()
    referral.start()
    referral.accept()
    referral.state.cancellation = Cancellation(reason=REASONS[0], requested=True)
    referral.tell_referrer()
    assert referral.read() == referral.last_told == ("accepted", "cancellation-requested", None)
