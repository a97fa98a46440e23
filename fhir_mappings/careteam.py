"""The treatment team as a FHIR CareTeam (NUCC role codes; members by display, they live in our roster)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fhir_mappings import codes
from fhir_mappings.common import business_identifier, concept, reference, validated
from referral_service.domain.careteam import CareTeamAssignment
from referral_service.domain.referral import Referral, ResourceRef


def care_team(
    referral: Referral,
    team: CareTeamAssignment,
    *,
    key: str,
    organization: ResourceRef,
    active: bool,
    start: date,
) -> dict[str, Any]:
    participants = []
    for role, member in team.members.items():
        code, display = codes.ROLE_NUCC[role]
        participants.append(
            {
                "role": [concept(codes.NUCC, member.nucc_code or code, display, text=role.value)],
                "member": {"display": member.name},
            }
        )
    return validated(
        {
            "resourceType": "CareTeam",
            "identifier": business_identifier(key),
            "status": "active" if active else "inactive",
            "name": f"IOP treatment team ({team.track_id})",
            "subject": reference(referral.patient.ref),
            "period": {"start": start.isoformat()},
            "participant": participants,
            "managingOrganization": [reference(organization)],
        }
    )
