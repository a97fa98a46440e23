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


# The lifecycle's open phases in order (the caseload board sorts by it): every phase not ENDED.
OPEN_IN_ORDER = (
    Phase.RECEIVED,
    Phase.SCREENING,
    Phase.WAITLISTED,
    Phase.ACCEPTED,
    Phase.INTAKE_SCHEDULED,
    Phase.IN_TREATMENT,
    Phase.DISCHARGED,
    Phase.AFTERCARE,
)
# Waiting for the screening decision (the inbox).
DECIDABLE = frozenset({Phase.RECEIVED, Phase.SCREENING, Phase.WAITLISTED})
# From acceptance until the program's discharge has been told: scores are taken.
ASSESSABLE = frozenset({Phase.ACCEPTED, Phase.INTAKE_SCHEDULED, Phase.IN_TREATMENT, Phase.DISCHARGED})
# The care team is active in the EHR (from the acceptance's writes until discharge); a group's roster.
TEAM_PHASES = frozenset({Phase.INTAKE_SCHEDULED, Phase.IN_TREATMENT})
# A discharge may be asked for (an accepted referral moves on to intake_scheduled within the same update).
DISCHARGEABLE = frozenset({Phase.ACCEPTED, *TEAM_PHASES})


def cancellable(phase: Phase) -> bool:
    """Until discharge: after it, the program is over and the loop closes by follow-up, not cancellation."""
    return phase not in ENDED and phase not in (Phase.DISCHARGED, Phase.AFTERCARE)
