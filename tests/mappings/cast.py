"""The synthetic cast: named referrals, one per way a referral can arrive, and what each maps to.

Every mapper output in ``tests/fixtures/golden`` is produced here from fixed inputs, so the golden-file
tests (pure) and the HAPI acceptance test (integration) check the very same resources.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from fhir_mappings.careplan import aftercare_plan, treatment_plan
from fhir_mappings.careteam import care_team
from fhir_mappings.document import note_instead
from fhir_mappings.encounter import session_encounter
from fhir_mappings.observation import assessment_observation
from fhir_mappings.outreach import outreach_task
from fhir_mappings.referral_in import referral_from_fhir
from fhir_mappings.task import referral_task
from fhir_mappings.write_transaction import Keyed, acceptance_transaction
from referral_service.domain.assessment import AssessmentRecord, Instrument
from referral_service.domain.attendance import SessionRecord
from referral_service.domain.careteam import assign_team
from referral_service.domain.program import Program, SessionKind
from referral_service.domain.referral import Referral, ResourceRef
from tests.referrals import FIXTURES

SOURCE_ID = "lakeside"
SOURCE_BASE_URL = "https://ehr.lakeside.example.org/fhir"  # where Ben's Bundle says its resources live
RECEIVED = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
START = date(2026, 11, 23)


@dataclass(frozen=True)
class CastMember:
    name: str  # the fixture file under tests/fixtures/referrals
    track_id: str
    how: str  # what this member's referral exercises


CAST = (
    CastMember("ada-testpatient-adult-inpatient", "adult-mh", "transaction Bundle, urn:uuid references"),
    CastMember("ben-testpatient-adolescent-php", "adolescent", "collection Bundle, ids, Coverage, Organization"),
    CastMember("cora-testpatient-sud-contained", "sud", "ServiceRequest alone with contained resources"),
)


def submission(member: CastMember) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{member.name}.json").read_text())
    return loaded


def referral_of(member: CastMember, program: Program) -> Referral:
    return referral_from_fhir(
        submission(member), source_id=SOURCE_ID, program_org=program.organization, source_base_url=SOURCE_BASE_URL
    )


def mapped_resources(member: CastMember, program: Program, referral: Referral) -> dict[str, dict[str, Any]]:
    """Every outgoing mapper's output for this member, by golden-file name."""
    key = f"{SOURCE_ID}|{member.name}"
    org = program.organization
    team = assign_team(program, member.track_id, {})
    team_ref = ResourceRef(resource_type="CareTeam", id="careteam-1")
    session = SessionRecord(session_id="s1", date=START, kind=SessionKind.GROUP, minutes=180, attended=True)
    phq9 = AssessmentRecord(assessment_id="a1", instrument=Instrument.PHQ_9, score=14, date=START)
    plan = treatment_plan(
        referral,
        program.track(member.track_id),
        key=f"{key}/careplan",
        status="active",
        start=START,
        care_team=team_ref,
        assessments=[ResourceRef(resource_type="Observation", id="obs-1")],
        team_members=[m.name for m in team.members.values()],
    )
    aftercare = aftercare_plan(
        referral, key=f"{key}/aftercare-plan", start=START, follow_up_days=[7, 30], care_team=team_ref
    )
    visit = session_encounter(referral, session, key=f"{key}/encounter/s1", organization=org)
    team_written = care_team(referral, team, key=f"{key}/careteam", organization=org, active=True, start=START)
    accepted = referral_task(
        referral,
        key=f"{key}/task",
        owner=org,
        status="accepted",
        business_status="event-scheduled",
        authored_on=RECEIVED,
        last_modified=RECEIVED,
    )
    unlinked_plan = treatment_plan(
        referral,
        program.track(member.track_id),
        key=f"{key}/careplan",
        status="active",
        start=START,
        care_team=None,
        team_members=[m.name for m in team.members.values()],
    )
    return {
        "task-received": referral_task(
            referral,
            key=f"{key}/task",
            owner=org,
            status="requested",
            business_status="created",
            authored_on=RECEIVED,
            last_modified=RECEIVED,
        ),
        "task-declined": referral_task(
            referral,
            key=f"{key}/task",
            owner=org,
            status="rejected",
            business_status="declined",
            authored_on=RECEIVED,
            last_modified=RECEIVED,
            status_reason="no_capacity",
        ),
        "task-completed": referral_task(
            referral,
            key=f"{key}/task",
            owner=org,
            status="completed",
            business_status="fulfillment-completed",
            authored_on=RECEIVED,
            last_modified=RECEIVED,
            outputs=[
                ResourceRef(resource_type="CarePlan", id="plan-1"),
                ResourceRef(resource_type="Encounter", id="enc-1"),
            ],
        ),
        "task-outreach": outreach_task(
            referral, key=f"{key}/outreach/s2", requester=org, missed=2, authored_on=RECEIVED
        ),
        "careteam": team_written,
        "careplan": plan,
        "careplan-note": note_instead(referral, plan, key=f"{key}/careplan"),
        "aftercare-plan": aftercare,
        "aftercare-plan-note": note_instead(referral, aftercare, key=f"{key}/aftercare-plan"),
        "encounter": visit,
        "encounter-note": note_instead(referral, visit, key=f"{key}/encounter/s1"),
        "observation-phq9": assessment_observation(referral, phq9, key=f"{key}/observation/a1"),
        # The acceptance as one transaction: the plan names the team, the Task lists the plan, by placeholder.
        "acceptance-transaction": acceptance_transaction(
            Keyed(f"{key}/careteam", team_written),
            Keyed(f"{key}/careplan", unlinked_plan),
            Keyed(f"{key}/task", accepted),
        ),
    }
