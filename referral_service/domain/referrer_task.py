"""What the referrer's closed-loop Task says: one pure function of the referral's state, and FHIR's Task state
machine it must move along.

The workflow writes the Task with this function's answer, and every read (``GET /fhir/Task``, the answer to a
resubmission, the intake's 201) asks the same function, so the Task a referrer polls is the Task the EHR was
sent (DOMAIN.md: the referrer's Task has one owner).
"""

from __future__ import annotations

from dataclasses import dataclass

from referral_service.domain.discharge import DischargeReason
from referral_service.domain.lifecycle import Phase
from referral_service.domain.referral import Frozen

TERMINAL = frozenset({"completed", "failed", "rejected", "cancelled"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"received", "accepted", "rejected", "cancelled"}),
    "received": frozenset({"accepted", "rejected", "cancelled"}),
    "accepted": frozenset({"in-progress", "cancelled"}),
    # Gravity: either party may cancel while the work is under way.
    "in-progress": frozenset({"completed", "failed", "on-hold", "cancelled"}),
    "on-hold": frozenset({"in-progress", "cancelled"}),
}
# FHIR asks a Task in these statuses to say why (Task.statusReason).
NEEDS_REASON = frozenset({"rejected", "cancelled", "on-hold", "failed"})

# How the referrer sees each phase before any discharge or cancellation: (Task.status, Task.businessStatus).
PHASE_STATUS: dict[Phase, tuple[str, str]] = {
    Phase.RECEIVED: ("received", "created"),
    Phase.SCREENING: ("received", "created"),
    Phase.WAITLISTED: ("received", "waitlisted"),
    Phase.ACCEPTED: ("accepted", "accepted"),
    Phase.DECLINED: ("rejected", "declined"),
    Phase.INTAKE_SCHEDULED: ("accepted", "event-scheduled"),
    Phase.IN_TREATMENT: ("in-progress", "in-treatment"),
    Phase.DISCHARGED: ("completed", "fulfillment-completed"),
    Phase.AFTERCARE: ("completed", "fulfillment-completed"),
    Phase.CLOSED: ("completed", "fulfillment-completed"),
    Phase.CANCELLED: ("cancelled", "cancellation-confirmed"),
    Phase.TRANSFERRED: ("completed", "transferred"),
}
# Said when the state holds no reason of its own (a referral recorded before reasons were kept).
DECLINED_REASON = "declined by the program"
CANCELLED_REASON = "revoked by referrer"


def can_transition(current: str, target: str) -> bool:
    """FHIR core Task transitions; servers do not enforce them, so we do."""
    return current == target or target in TRANSITIONS.get(current, frozenset())


class Cancellation(Frozen):
    """The referrer's cancellation as the program handles it."""

    reason: str
    requested: bool = False  # BSeR's handshake: acknowledged (cancellation-requested) before it is confirmed
    confirmed: bool = False  # the plan and team are closed: the program confirms (cancelled)


@dataclass(frozen=True, slots=True)
class ReferrerTask:
    """Task.status, Task.businessStatus (BSeR code) and Task.statusReason text."""

    status: str
    business_status: str
    reason: str | None = None


def referrer_task(
    phase: Phase,
    *,
    decline_reason: str | None = None,
    cancellation: Cancellation | None = None,
    discharge_reason: DischargeReason | None = None,
    attended: bool = False,
) -> ReferrerTask:
    """The Task for a referral in ``phase`` with these facts; never one FHIR would refuse for want of a reason.

    A cancellation outranks a discharge (the workflow applies the one it sees first, and records the
    cancellation only when it applies it); a discharge outranks the phase, because the Task is told before the
    phase moves on. A discharge with no attended session cancels the Task: FHIR's machine has no accepted ->
    completed, and nothing was fulfilled.
    """
    if cancellation is not None and (cancellation.confirmed or phase == Phase.CANCELLED):
        return ReferrerTask("cancelled", "cancellation-confirmed", cancellation.reason)
    if phase == Phase.CANCELLED:
        return ReferrerTask("cancelled", "cancellation-confirmed", CANCELLED_REASON)
    if cancellation is not None and cancellation.requested:
        status, _ = PHASE_STATUS[phase]
        return ReferrerTask(status, "cancellation-requested")
    if discharge_reason is not None:
        transferred = discharge_reason == DischargeReason.TRANSFERRED
        if attended:
            return ReferrerTask("completed", "transferred" if transferred else "fulfillment-completed")
        return ReferrerTask(
            "cancelled",
            "transferred" if transferred else "unattended",
            f"discharged before any attended session ({discharge_reason})",
        )
    if phase == Phase.DECLINED:
        return ReferrerTask("rejected", "declined", decline_reason or DECLINED_REASON)
    status, business_status = PHASE_STATUS[phase]
    return ReferrerTask(status, business_status)
