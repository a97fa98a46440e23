"""Treatment-team assignment: least-loaded staff per role on the track, deterministic."""

from __future__ import annotations

from collections.abc import Mapping

from referral_service.domain.program import Program, StaffMember, StaffRole
from referral_service.domain.referral import Frozen

CORE_ROLES = (StaffRole.PRESCRIBER, StaffRole.PRIMARY_THERAPIST, StaffRole.CASE_MANAGER, StaffRole.NURSE)


class TeamUnavailable(ValueError):
    """No one with capacity can fill a role on this track; the message names the role, never a patient."""


class CareTeamAssignment(Frozen):
    track_id: str
    members: dict[StaffRole, StaffMember]


def assign_team(program: Program, track_id: str, caseloads: Mapping[str, int]) -> CareTeamAssignment:
    """Per role: staff on the track under their caseload limit, fewest open referrals first, then by id."""
    track = program.track(track_id)
    roles = CORE_ROLES + ((StaffRole.PEER_SPECIALIST,) if track.has_peer_specialist else ())
    members = {}
    for role in roles:
        candidates = sorted(
            (
                m
                for m in program.roster
                if m.role == role and track_id in m.tracks and caseloads.get(m.id, 0) < m.caseload_limit
            ),
            key=lambda m: (caseloads.get(m.id, 0), m.id),
        )
        if not candidates:
            raise TeamUnavailable(f"no {role.value} with capacity on track {track_id}")
        members[role] = candidates[0]
    return CareTeamAssignment(track_id=track_id, members=members)
