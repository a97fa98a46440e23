"""A scenario's referral moves to the replay's clock and gets its own order number; the patient stays."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from referral_service.domain.program import Program
from referral_service.replay.scenario import ReferralSpec, ScenarioError
from referral_service.replay.seeding import prepare
from tests.referrals import FIXTURES

DAY0 = datetime(2027, 3, 1, 14, 30, tzinfo=UTC)


def test_dates_follow_the_hospital_discharge_day_and_birth_dates_stay(program: Program) -> None:
    spec = ReferralSpec(file=FIXTURES / "ada-testpatient-adult-inpatient.json", hospital_discharge_day=-2)
    prepared = prepare(spec, program, day0=DAY0, order_suffix="story-abc123")

    assert prepared.referral.discharge is not None
    assert prepared.referral.discharge.discharge_date == date(2027, 2, 27)
    assert prepared.referral.authored_on is not None
    assert prepared.referral.authored_on.date() == date(2027, 2, 26)  # a day before discharge, as in the fixture
    assert prepared.referral.patient.birth_date == date(1984, 2, 29)


def test_the_story_is_moved_to_the_programs_day_not_utcs(program: Program) -> None:
    """At 03:00 UTC on 2 March it is still 1 March in New York: the story's day 0 is 1 March, so its sessions,
    dated in the program's days from then, are never after the workflow's today."""
    spec = ReferralSpec(file=FIXTURES / "ada-testpatient-adult-inpatient.json", hospital_discharge_day=0)
    prepared = prepare(spec, program, day0=datetime(2027, 3, 2, 3, 0, tzinfo=UTC), order_suffix="story-abc123")

    assert prepared.referral.discharge is not None
    assert prepared.referral.discharge.discharge_date == date(2027, 3, 1)


def test_the_order_number_and_its_conditional_create_get_the_suffix(program: Program) -> None:
    spec = ReferralSpec(file=FIXTURES / "ada-testpatient-adult-inpatient.json")
    prepared = prepare(spec, program, day0=DAY0, order_suffix="story-abc123")

    assert prepared.referral.placer_identifier.value == "SR-2026-0001-story-abc123"
    text = json.dumps(prepared.payload)
    assert "identifier=urn:oid:2.16.840.1.113883.3.9999.3|SR-2026-0001-story-abc123" in text
    assert '"SR-2026-0001"' not in text
    assert "SYN-MRN-0001" in text  # the same synthetic patient on every run: found, not duplicated


def test_a_file_that_is_not_a_referral_is_named(program: Program, tmp_path) -> None:
    wrong = tmp_path / "patient.json"
    wrong.write_text(json.dumps({"resourceType": "Patient"}))
    with pytest.raises(ScenarioError, match=r"patient\.json: not a usable referral"):
        prepare(ReferralSpec(file=wrong), program, day0=DAY0, order_suffix="x")
