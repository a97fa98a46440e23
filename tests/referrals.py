"""The synthetic cast's referral fixtures, made unique per test so tests never see each other's data."""

from __future__ import annotations

import json
import re
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from workflows.referral import ReferralWorkflow
from workflows.referral_types import ReferralState

FIXTURES = Path(__file__).parent / "fixtures" / "referrals"
# Values in the fixtures that identify one referral; each test gets its own copy of them.
UNIQUE_VALUES = ("SR-2026-0001", "SYN-MRN-0001", "SYN-ENC-0001")
# What the synthetic cast's referrals say about the patients (family name, MRN prefix, birth dates, phone prefix):
# output, logs and stored data are scanned for these and must hold none of them.
PATIENT_DATA = ("Testpatient", "SYN-MRN", "1984-02-29", "2010-06-15", "1979-09-03", "555-01")
# The day Ada leaves hospital in her fixture; the story's other 2026 dates (admission, referral) follow it.
ADA_DISCHARGED = date(2026, 11, 20)
_STORY_DATE = re.compile(r"2026-\d\d-\d\d")


def referral_bundle(name: str, *, discharged_on: date | None = None) -> dict[str, Any]:
    """A fixture Bundle with fresh identifier values (same shape, new order number, MRN and encounter),
    its story moved in time so the hospital discharge falls on ``discharged_on`` when given."""
    text = (FIXTURES / f"{name}.json").read_text()
    if discharged_on is not None:
        shift = discharged_on - ADA_DISCHARGED
        text = _STORY_DATE.sub(lambda m: (date.fromisoformat(m.group()) + shift).isoformat(), text)
    suffix = uuid.uuid4().hex[:8]
    for placeholder in UNIQUE_VALUES:
        text = text.replace(placeholder, f"{placeholder}-{suffix}")
    bundle: dict[str, Any] = json.loads(text)
    return bundle


async def updated(handle: WorkflowHandle[Any, Any], update: Any, *args: Any) -> ReferralState:
    """Run a workflow update, then read the whole state (an update answers only where the referral stands)."""
    await handle.execute_update(update, *args)
    state: ReferralState = await handle.query(ReferralWorkflow.snapshot)
    return state
