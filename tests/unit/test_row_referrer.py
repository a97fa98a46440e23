"""The read-model row names who referred: the practitioner and the organisation the submission carries (Ben's
Bundle: the Organization; Ada's: the Practitioner), never the source id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fhir_mappings.referral_in import referral_from_fhir
from referral_service.domain.referral import ResourceRef
from referral_service.domain.referral_row import RowVersion
from referral_service.programs import load_program
from tests.referrals import referral_bundle
from workflows.referral_row import referral_row
from workflows.referral_types import ReferralState

PROGRAM = load_program()
AT = datetime(2026, 11, 21, 9, tzinfo=UTC)


def _row_referrer(fixture: str, **changes: ResourceRef | None) -> str | None:
    referral = referral_from_fhir(referral_bundle(fixture), source_id="st-marys", program_org=PROGRAM.organization)
    state = ReferralState(
        key="st-marys.SR-1.0123456789", referral=referral.model_copy(update=changes), program=PROGRAM, received_at=AT
    )
    return referral_row(state, RowVersion(at=AT, event=1)).referrer


@pytest.mark.parametrize(
    ("fixture", "named"),
    [
        ("ada-testpatient-adult-inpatient", "Dr. Harper Hospitalist"),
        ("ben-testpatient-adolescent-php", "Lakeside Behavioral Hospital"),
    ],
)
def test_the_row_names_the_carried_requester(fixture: str, named: str) -> None:
    assert _row_referrer(fixture) == named


def test_a_practitioner_and_their_organisation_are_both_named() -> None:
    organisation = ResourceRef(resource_type="Organization", display="Lakeside Behavioral Hospital")
    both = _row_referrer("ada-testpatient-adult-inpatient", requester_organization=organisation)
    assert both == "Dr. Harper Hospitalist, Lakeside Behavioral Hospital"
    assert _row_referrer("ada-testpatient-adult-inpatient", requester=None, requester_organization=None) is None
