"""Golden files: what each cast member's referral maps to, in and out, byte for byte.

A change to a mapper shows up as a diff of ``tests/fixtures/golden``. After an intended change, rewrite
the files with ``UPDATE_GOLDEN=1 pytest tests/mappings`` and review the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from referral_service.domain.program import Program
from tests.mappings.cast import CAST, CastMember, mapped_resources, referral_of

GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _check(path: Path, actual: dict[str, Any]) -> None:
    text = json.dumps(actual, indent=2, sort_keys=True) + "\n"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: run with UPDATE_GOLDEN=1 and review it"
    assert json.loads(path.read_text()) == actual, f"{path.name} differs from its golden file"


@pytest.mark.parametrize("member", CAST, ids=lambda m: m.name)
def test_incoming_referral_matches_its_golden_file(member: CastMember, program: Program) -> None:
    """The domain Referral read from each way of sending one (Bundle, ids, contained)."""
    _check(GOLDEN / member.name / "referral.json", referral_of(member, program).model_dump(mode="json"))


@pytest.mark.parametrize("member", CAST, ids=lambda m: m.name)
def test_written_resources_match_their_golden_files(member: CastMember, program: Program) -> None:
    """Task (received, declined, completed), CareTeam, CarePlans and Encounter as the EHR receives them."""
    resources = mapped_resources(member, program, referral_of(member, program))
    for name, resource in resources.items():
        _check(GOLDEN / member.name / f"{name}.json", resource)
    shipped = {p.stem for p in (GOLDEN / member.name).glob("*.json")} - {"referral"}
    assert shipped == set(resources), "golden files without a mapper (or the reverse): remove or regenerate"
