"""Treatment-team assignment: least-loaded staff per role on the track, deterministic; and reassignment."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from referral_service.domain.program import Program, StaffMember, StaffRole, Track
from referral_service.domain.referral import Frozen

CORE_ROLES = (StaffRole.PRESCRIBER, StaffRole.PRIMARY_THERAPIST, StaffRole.CASE_MANAGER, StaffRole.NURSE)


class TeamUnavailable(ValueError):
    """No one with capacity can fill a role on this track; the message names the role, never a patient."""


class ReassignmentRefused(ValueError):
    """A reassignment breaks a roster rule; the message names the rule, the role and the staff id."""


class CareTeamAssignment(Frozen):
    track_id: str
    members: dict[StaffRole, StaffMember]
    # When this assignment took effect (None in states recorded before reassignment existed).
    assigned_at: datetime | None = None


def team_roles(track: Track) -> tuple[StaffRole, ...]:
    """The roles a team on ``track`` has: the core four, and a peer specialist where the track has one."""
    return CORE_ROLES + ((StaffRole.PEER_SPECIALIST,) if track.has_peer_specialist else ())


def assign_team(program: Program, track_id: str, caseloads: Mapping[str, int]) -> CareTeamAssignment:
    """Per role: staff on the track under their caseload limit, fewest open referrals first, then by id."""
    members = {}
    for role in team_roles(program.track(track_id)):
        candidates = sorted(
            (m for m in program.roster if m.role == role and _can_take(m, track_id, caseloads)),
            key=lambda m: (caseloads.get(m.id, 0), m.id),
        )
        if not candidates:
            raise TeamUnavailable(f"no {role.value} with capacity on track {track_id}")
        members[role] = candidates[0]
    return CareTeamAssignment(track_id=track_id, members=members)


def reassign(
    program: Program,
    team: CareTeamAssignment,
    changes: Mapping[StaffRole, str],
    caseloads: Mapping[str, int],
) -> dict[StaffRole, StaffMember]:
    """The roles whose member changes, each with its new member; an unchanged role is left out (so the same
    request twice changes nothing the second time). Refuses an unknown staff id, a member of another role or
    track, a role the track's team lacks, and a member at their caseload limit."""
    if not changes:
        raise ReassignmentRefused("name at least one role to reassign")
    roster = {m.id: m for m in program.roster}
    roles = team_roles(program.track(team.track_id))
    changed = {}
    for role, staff_id in changes.items():
        if role not in roles:
            raise ReassignmentRefused(f"track {team.track_id} has no {role.value} on its teams")
        member = roster.get(staff_id)
        if member is None:
            raise ReassignmentRefused(f"no staff member {staff_id!r} on the program's roster")
        current = team.members.get(role)
        if current is not None and current.id == member.id:
            continue
        if member.role != role:
            raise ReassignmentRefused(f"{member.id} is a {member.role.value}, not a {role.value}")
        if team.track_id not in member.tracks:
            raise ReassignmentRefused(f"{member.id} does not work on track {team.track_id}")
        if not _can_take(member, team.track_id, caseloads):
            raise ReassignmentRefused(
                f"{member.id} is at their caseload limit ({caseloads.get(member.id, 0)} of {member.caseload_limit})"
            )
        changed[role] = member
    return changed


def _can_take(member: StaffMember, track_id: str, caseloads: Mapping[str, int]) -> bool:
    return track_id in member.tracks and caseloads.get(member.id, 0) < member.caseload_limit
