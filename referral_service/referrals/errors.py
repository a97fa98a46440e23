"""Why an operation on a referral did not happen. Each surface answers them in its own form (an
OperationOutcome, JSON ``detail``, a dashboard notice) with the status its HTTP answer carries; the message never
holds patient data."""

from __future__ import annotations

from typing import ClassVar


class ReferralError(Exception):
    """An operation on a referral that did not happen; ``str()`` says why."""

    status: ClassVar[int] = 409


class NoSuchReferral(ReferralError):
    """The key names no referral (nothing, or a workflow of another type)."""

    status = 404

    def __init__(self) -> None:
        super().__init__("no such referral")


class Unavailable(ReferralError):
    """Temporal is out of reach, or no worker answered in time: retrying may help."""

    status = 503

    def __init__(self) -> None:
        super().__init__("the workflow service is unavailable; retry")


class Unreadable(ReferralError):
    """The workflow answered under a key this process's ring does not hold (an operator's fix, not a retry)."""

    status = 503

    def __init__(self) -> None:
        super().__init__("this referral's state cannot be read by this service (payload key ring)")


class Ended(ReferralError):
    """The referral's workflow has ended: it takes no more changes."""

    def __init__(self, phase: str | None = None) -> None:
        where = f" (phase {phase})" if phase else ""
        super().__init__(f"this referral has ended{where} and takes no more changes")


class Refused(ReferralError):
    """The workflow refused the change under one of its rules; the message names the rule."""


class ClinicalDateRefused(Refused):
    """Refused under a clinical date rule (a date in the future, before the discharge, ...)."""

    status = 422


class NotOnRoster(ReferralError):
    """The caller's sign-in is on no roster member of the program."""

    status = 404

    def __init__(self) -> None:
        super().__init__("your sign-in is on no roster member: add its subject to your entry's subjects in the program")
