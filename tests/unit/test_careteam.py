"""Care team assignment and reassignment against the example program's roster: the rules a case manager meets."""

from __future__ import annotations

import pytest

from referral_service.domain.careteam import ReassignmentRefused, TeamUnavailable, assign_team, reassign
from referral_service.domain.program import Program, StaffRole

R = StaffRole


def test_acceptance_picks_the_least_loaded_member_with_capacity(program: Program) -> None:
    team = assign_team(program, "adult-mh", {"lcsw-reyes": 3, "lmft-chen": 1})
    assert team.members[R.PRIMARY_THERAPIST].id == "lmft-chen"
    assert R.PEER_SPECIALIST not in team.members  # adult-mh has no peer specialist
    assert R.PEER_SPECIALIST in assign_team(program, "sud", {}).members


def test_acceptance_refuses_when_a_role_has_no_one_with_capacity(program: Program) -> None:
    with pytest.raises(TeamUnavailable, match="no peer_specialist with capacity on track sud"):
        assign_team(program, "sud", {"peer-johnson": 30})


def test_reassignment_returns_only_the_roles_that_change(program: Program) -> None:
    team = assign_team(program, "adult-mh", {})
    assert team.members[R.PRIMARY_THERAPIST].id == "lcsw-reyes"
    changed = reassign(program, team, {R.PRIMARY_THERAPIST: "lmft-chen", R.NURSE: "rn-murphy"}, {})
    assert {role: m.id for role, m in changed.items()} == {R.PRIMARY_THERAPIST: "lmft-chen"}
    assert reassign(program, team, {R.NURSE: "rn-murphy"}, {}) == {}  # the same request again: nothing to do


@pytest.mark.parametrize(
    ("track", "changes", "caseloads", "message"),
    [
        ("adult-mh", {}, {}, "name at least one role"),
        ("adult-mh", {R.PRIMARY_THERAPIST: "dr-who"}, {}, "no staff member 'dr-who' on the program's roster"),
        ("adult-mh", {R.PRIMARY_THERAPIST: "rn-murphy"}, {}, "rn-murphy is a nurse, not a primary_therapist"),
        ("adult-mh", {R.PRIMARY_THERAPIST: "ladc-brooks"}, {}, "ladc-brooks does not work on track adult-mh"),
        ("adult-mh", {R.PEER_SPECIALIST: "peer-johnson"}, {}, "track adult-mh has no peer_specialist"),
        (
            "adult-mh",
            {R.PRIMARY_THERAPIST: "lmft-chen"},
            {"lmft-chen": 12},
            r"lmft-chen is at their caseload limit \(12 of 12\)",
        ),
    ],
)
def test_reassignment_refuses_what_breaks_a_roster_rule(
    program: Program, track: str, changes: dict[StaffRole, str], caseloads: dict[str, int], message: str
) -> None:
    team = assign_team(program, track, {})
    with pytest.raises(ReassignmentRefused, match=message):
        reassign(program, team, changes, caseloads)


def test_a_member_already_on_the_team_is_not_held_to_the_caseload_limit(program: Program) -> None:
    """Their count already includes this referral: naming them again is no change, not an overload."""
    team = assign_team(program, "adult-mh", {})
    assert reassign(program, team, {R.PRIMARY_THERAPIST: "lcsw-reyes"}, {"lcsw-reyes": 15}) == {}
