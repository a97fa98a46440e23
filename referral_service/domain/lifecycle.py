"""The referral's phases and which moves between them are possible."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    RECEIVED = "received"
    SCREENING = "screening"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WAITLISTED = "waitlisted"
    INTAKE_SCHEDULED = "intake_scheduled"
    IN_TREATMENT = "in_treatment"
    DISCHARGED = "discharged"
    AFTERCARE = "aftercare"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    TRANSFERRED = "transferred"


_P = Phase
# Where a referral's story is over: off every open list, nothing more to do.
ENDED = frozenset({Phase.CLOSED, Phase.DECLINED, Phase.CANCELLED, Phase.TRANSFERRED})
ALLOWED: dict[Phase, frozenset[Phase]] = {
    _P.RECEIVED: frozenset({_P.SCREENING, _P.CANCELLED}),
    _P.SCREENING: frozenset({_P.ACCEPTED, _P.DECLINED, _P.WAITLISTED, _P.CANCELLED}),
    _P.WAITLISTED: frozenset({_P.ACCEPTED, _P.DECLINED, _P.CANCELLED}),
    _P.ACCEPTED: frozenset({_P.INTAKE_SCHEDULED, _P.CANCELLED}),
    # A patient who never attends is still discharged (dropped out), with a coded reason.
    _P.INTAKE_SCHEDULED: frozenset({_P.IN_TREATMENT, _P.DISCHARGED, _P.TRANSFERRED, _P.CANCELLED}),
    _P.IN_TREATMENT: frozenset({_P.DISCHARGED, _P.TRANSFERRED, _P.CANCELLED}),
    _P.DISCHARGED: frozenset({_P.AFTERCARE}),
    _P.AFTERCARE: frozenset({_P.CLOSED}),
    _P.CLOSED: frozenset(),
    _P.DECLINED: frozenset(),
    _P.CANCELLED: frozenset(),
    _P.TRANSFERRED: frozenset(),
}


class ImpossibleTransition(ValueError):
    """A move the lifecycle does not allow; the message says from where to where."""


def check_transition(current: Phase, target: Phase) -> None:
    if target not in ALLOWED[current]:
        raise ImpossibleTransition(f"cannot go from {current} to {target}")
