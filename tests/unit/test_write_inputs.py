"""Write-back activity inputs scheduled before they were slimmed (the whole program in each) still read: a retried
activity from such a history gets the organization, and a treatment plan its track, from that program."""

from __future__ import annotations

from datetime import date
from typing import Any

from fhir_mappings.referral_in import referral_from_fhir
from referral_service.activities.write_inputs import WriteCarePlanInput, WriteTaskInput
from referral_service.programs import load_program
from tests.conftest import HAPI_SOURCE_ID
from tests.referrals import referral_bundle

PROGRAM = load_program()
REFERRAL = referral_from_fhir(
    referral_bundle("ada-testpatient-adult-inpatient"), source_id=HAPI_SOURCE_ID, program_org=PROGRAM.organization
)
TRACK = PROGRAM.tracks[0]


def old_plan(**fields: Any) -> dict[str, Any]:
    """A care-plan input as the workflow scheduled it before: the program, no organization, no track."""
    return {
        "key": "k/careplan",
        "referral": REFERRAL.model_dump(mode="json"),
        "program": PROGRAM.model_dump(mode="json"),
        "track_id": TRACK.id,
        "status": "active",
        "start": "2026-11-21",
        **fields,
    }


def test_an_old_treatment_plan_input_takes_its_track_and_organization_from_the_program() -> None:
    plan = WriteCarePlanInput.model_validate(old_plan())

    assert plan.track == TRACK
    assert plan.organization == PROGRAM.organization
    assert plan.start == date(2026, 11, 21)


def test_an_old_aftercare_plan_input_stays_without_a_track() -> None:
    plan = WriteCarePlanInput.model_validate(old_plan(follow_up_days=[7, 30]))

    assert plan.track is None
    assert plan.organization == PROGRAM.organization


def test_an_old_task_input_takes_the_organization_from_the_program() -> None:
    task = WriteTaskInput.model_validate(
        {
            "key": "k/task",
            "referral": REFERRAL.model_dump(mode="json"),
            "program": PROGRAM.model_dump(mode="json"),
            "status": "received",
            "business_status": "created",
            "authored_on": "2026-11-21T09:00:00Z",
        }
    )

    assert task.organization == PROGRAM.organization
