"""The business key of each resource the service writes for a referral: ``<referral key>/<what>[/<event>]``. It
becomes the resource's identifier in the service's own system, so a retried or replayed write finds what an
earlier try wrote; every writer and reader builds it here."""

from __future__ import annotations

from enum import StrEnum


class Written(StrEnum):
    TASK = "task"  # the referrer's closed-loop Task, one per referral
    CARE_TEAM = "careteam"
    CARE_PLAN = "careplan"  # the treatment plan
    AFTERCARE_PLAN = "aftercare-plan"
    ENCOUNTER = "encounter"  # one per attended session (event: the session id)
    OBSERVATION = "observation"  # one per assessment (event: the assessment id)
    OUTREACH = "outreach"  # one per absence streak (event: the streak's first session id)


def write_key(referral_key: str, what: Written, event: str | None = None) -> str:
    return f"{referral_key}/{what}" if event is None else f"{referral_key}/{what}/{event}"
