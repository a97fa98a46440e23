"""What the write-back activities get of a referral (``Referral.references``: its source and references, none of
the patient's details, so they stay out of the workflow history) is all every outgoing mapper reads."""

from __future__ import annotations

import pytest

from referral_service.domain.program import Program
from tests.mappings.cast import CAST, CastMember, mapped_resources, referral_of


@pytest.mark.parametrize("member", CAST, ids=lambda m: m.name)
def test_every_written_resource_is_the_same_from_the_references_alone(member: CastMember, program: Program) -> None:
    referral = referral_of(member, program)
    slim = referral.references()
    assert (slim.patient.family, slim.patient.given, slim.patient.birth_date, slim.patient.phone) == (
        None,
        [],
        None,
        None,
    )
    assert mapped_resources(member, program, slim) == mapped_resources(member, program, referral)
