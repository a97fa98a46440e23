"""Program discharge and referral decline, each with a coded reason."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from referral_service.domain.program import LevelOfCare
from referral_service.domain.referral import Frozen


class DischargeReason(StrEnum):
    COMPLETED = "completed"
    TRANSFERRED = "transferred"
    LEFT_AGAINST_ADVICE = "left_against_advice"
    DROPPED_OUT = "dropped_out"
    ADMINISTRATIVE = "administrative"
    OTHER = "other"


class DeclineReason(StrEnum):
    NO_CAPACITY = "no_capacity"
    NOT_ELIGIBLE = "not_eligible"
    CLINICAL_MISMATCH = "clinical_mismatch"
    INSURANCE = "insurance"
    PATIENT_DECLINED = "patient_declined"
    REFERRED_ELSEWHERE = "referred_elsewhere"
    COULD_NOT_CONTACT = "could_not_contact"


class Discharge(Frozen):
    reason: DischargeReason
    date: date
    destination_level: LevelOfCare | None = None  # for transfers: where the patient goes
    note: str = ""
