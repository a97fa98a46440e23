"""Standardised assessments (PHQ-9, GAD-7, AUDIT-C, C-SSRS): which instruments, and what a score may be."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import Field

from referral_service.domain.referral import Frozen


class Instrument(StrEnum):
    PHQ_9 = "PHQ-9"
    GAD_7 = "GAD-7"
    AUDIT_C = "AUDIT-C"
    C_SSRS = "C-SSRS"


# Total-score ranges; the C-SSRS screener's score is the number of its six questions answered yes.
SCORE_RANGE: dict[Instrument, tuple[int, int]] = {
    Instrument.PHQ_9: (0, 27),
    Instrument.GAD_7: (0, 21),
    Instrument.AUDIT_C: (0, 12),
    Instrument.C_SSRS: (0, 6),
}


class AssessmentRecord(Frozen):
    """One administered instrument; ``assessment_id`` makes recording it again a replacement, not a copy."""

    assessment_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    instrument: Instrument
    score: int
    date: date


def score_problem(assessment: AssessmentRecord) -> str | None:
    """Why the score cannot be right for its instrument, or None when it is in range."""
    low, high = SCORE_RANGE[assessment.instrument]
    if low <= assessment.score <= high:
        return None
    return f"a {assessment.instrument} score is between {low} and {high}, not {assessment.score}"
