"""Property-based tests (hypothesis): whatever a sender does to a referral, the mapping answers with a
Referral or with issues naming elements, never crashes and never echoes patient data; and the Task the
service writes stays a valid R4 Task along FHIR's state machine."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappings import task
from fhir_mappings.outcomes import UnusableReferral
from fhir_mappings.referral_in import referral_from_fhir
from referral_service.domain.lifecycle import ALLOWED, Phase
from referral_service.domain.referral import ResourceRef
from referral_service.domain.referrer_task import NEEDS_REASON, PHASE_STATUS, TERMINAL, TRANSITIONS, can_transition
from tests.mappings.cast import CAST
from tests.referrals import referral_bundle
from workflows.referral_types import FHIR_STRING

PROGRAM = ResourceRef(resource_type="Organization", id="program")
# Values a sender may put anywhere: wrong types, empty, huge, control characters and markup.
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.just("<script>alert(1)</script>"),
    st.just("\x00\x1b[31m"),
    st.just("x" * 5000),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every element path in a JSON value (dict keys and list positions)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _spoil(document: dict[str, Any], path: tuple[Any, ...], junk: Any, delete: bool) -> dict[str, Any]:
    spoilt = copy.deepcopy(document)
    parent = spoilt
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = junk
    return spoilt


def _phi(referral: dict[str, Any]) -> list[str]:
    """The patient's names, MRN and birth date, from a Bundle or a ServiceRequest's contained resources."""
    resources = [e["resource"] for e in referral.get("entry", [])] + referral.get("contained", [])
    [patient] = [r for r in resources if r["resourceType"] == "Patient"]
    name = patient["name"][0]
    return [name["family"], *name["given"], patient["identifier"][0]["value"], patient["birthDate"]]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=st.sampled_from([member.name for member in CAST]), junk=JUNK, delete=st.booleans())
def test_a_spoilt_referral_maps_or_names_what_is_wrong_and_never_leaks(
    data: st.DataObject, name: str, junk: Any, delete: bool
) -> None:
    bundle = referral_bundle(name)
    path = data.draw(st.sampled_from(_paths(bundle)))
    spoilt = _spoil(bundle, path, junk, delete)
    refusal = _refusal(spoilt)
    if refusal is not None:
        assert refusal.issues, "a refusal must say why"
        assert all(issue.severity in ("error", "fatal") for issue in refusal.issues)
        described = json.dumps([issue.model_dump() for issue in refusal.issues]) + str(refusal)
        leaked = [value for value in _phi(bundle) if value in described]
        assert leaked == [], f"the refusal echoes patient data: {leaked}"


def _refusal(submission: dict[str, Any]) -> UnusableReferral | None:
    """None when the submission maps; any exception other than a refusal fails the test."""
    try:
        referral_from_fhir(submission, source_id="st-marys", program_org=PROGRAM, received_at=datetime.now(UTC))
    except UnusableReferral as unusable:
        return unusable
    return None


def _walks() -> st.SearchStrategy[list[Phase]]:
    """Random walks through the lifecycle from RECEIVED, along allowed moves only."""

    @st.composite
    def walk(draw: st.DrawFn) -> list[Phase]:
        phases = [Phase.RECEIVED]
        while ALLOWED[phases[-1]] and draw(st.integers(0, 9)) < 9:
            phases.append(draw(st.sampled_from(sorted(ALLOWED[phases[-1]]))))
        return phases

    return walk()


@settings(max_examples=200, deadline=None)
@given(walk=_walks(), reason=st.from_regex(FHIR_STRING, fullmatch=True).filter(lambda text: len(text) <= 500))
def test_the_task_for_every_phase_is_a_valid_r4_task_that_needs_a_reason_where_fhir_does(
    walk: list[Phase], reason: str
) -> None:
    """Reasons come from the API's validated inputs (``FHIR_STRING``) or our own codes."""
    referral = referral_from_fhir(referral_bundle("ada-testpatient-adult-inpatient"), source_id="st-marys")
    now = datetime.now(UTC)
    for phase in walk:
        status, business_status = PHASE_STATUS[phase]
        written = task.referral_task(
            referral,
            key="k/task",
            owner=PROGRAM,
            status=status,
            business_status=business_status,
            authored_on=now,
            last_modified=now,
            status_reason=reason if status in NEEDS_REASON else None,
        )
        assert written["status"] == status
        assert written["businessStatus"]["coding"][0]["code"] == business_status


@given(current=st.sampled_from(sorted({*TRANSITIONS, *TERMINAL})), target=st.text(max_size=12))
def test_nothing_leaves_a_terminal_task_status(current: str, target: str) -> None:
    if current in TERMINAL and target != current:
        assert not can_transition(current, target)
