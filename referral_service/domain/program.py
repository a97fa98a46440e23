"""Program definitions (tracks, schedule, roster, deadlines): data loaded from a file, not code."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from referral_service.domain.program_day import time_zone
from referral_service.domain.referral import Frozen, Identifier, ResourceRef


class SessionKind(StrEnum):
    GROUP = "group"
    INDIVIDUAL = "individual"
    FAMILY = "family"
    PSYCHOEDUCATION = "psychoeducation"
    MEDICATION_MANAGEMENT = "medication_management"


class StaffRole(StrEnum):
    PRESCRIBER = "prescriber"
    PRIMARY_THERAPIST = "primary_therapist"
    CASE_MANAGER = "case_manager"
    NURSE = "nurse"
    PEER_SPECIALIST = "peer_specialist"


class LevelOfCare(Frozen):
    """A level in a named framework; the edition matters because ASAM's 4th edition renamed levels."""

    framework: Literal["ASAM", "LOCUS"] = "ASAM"
    edition: str = "3"
    level: str = "2.1"


class Track(Frozen):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: str
    population: Literal["adult", "adolescent"] = "adult"
    level_of_care: LevelOfCare = LevelOfCare()
    min_weekly_hours: float = Field(gt=0, le=40)
    days: list[int] = Field(min_length=1)  # ISO weekdays, 1 = Monday
    start_hour: int = Field(ge=0, le=23)
    hours_per_day: float = Field(gt=0, le=8)
    length_weeks: int = Field(ge=1, le=52)
    session_kinds: list[SessionKind] = Field(min_length=1)
    has_peer_specialist: bool = False

    @model_validator(mode="after")
    def _schedule_meets_minimum(self) -> Track:
        if len(self.days) * self.hours_per_day < self.min_weekly_hours:
            raise ValueError(f"track {self.id}: its schedule offers fewer hours than its weekly minimum")
        return self


class StaffMember(Frozen):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: str
    role: StaffRole
    nucc_code: str  # NUCC provider taxonomy, shown as the CareTeam role
    tracks: list[str]
    caseload_limit: int = Field(ge=1)
    # Sign-in token subjects (``sub``) of this person: whose "my day" a signed-in user sees.
    subjects: list[str] = Field(default_factory=list)


class Deadlines(Frozen):
    response_hours: int = Field(default=24, ge=1)
    first_session_days: int = Field(default=7, ge=1)
    follow_up_days: list[int] = Field(default_factory=lambda: [7, 30])
    absence_threshold: int = Field(default=2, ge=1)


class ReferralCodes(Frozen):
    """Which orders count as referrals to this level of care (DOMAIN.md, "Codes"): data, so a program can
    widen or narrow them. An order is refused only when it is plainly something else (a lab test, imaging, a
    code-status directive); a code the lists do not know is taken, since referral coding varies by EHR."""

    # system|code pairs that name a referral this program takes.
    referral: list[str] = Field(
        default_factory=lambda: [
            "http://snomed.info/sct|390866009",  # referral to mental health team
            "http://snomed.info/sct|401266006",  # referral to drug abuse counselor
            "http://snomed.info/sct|306252003",  # referral to mental health counselor
            "http://snomed.info/sct|3457005",  # patient referral
            "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets|S9480",  # psychiatric IOP
            "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets|H0015",  # substance-use IOP
        ]
    )
    # Code systems whose orders are tests, never referrals (LOINC orders a lab test or panel).
    not_referral_systems: list[str] = Field(default_factory=lambda: ["http://loinc.org"])
    # system|code pairs of categories and codes that are plainly not a referral for this level of care.
    not_referral: list[str] = Field(
        default_factory=lambda: [
            "http://snomed.info/sct|108252007",  # laboratory procedure (category)
            "http://snomed.info/sct|363679005",  # imaging (category)
            "http://snomed.info/sct|304253006",  # not for resuscitation (a DNR directive)
            "http://snomed.info/sct|439569004",  # resuscitation status
            "http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
            "http://terminology.hl7.org/CodeSystem/observation-category|imaging",
        ]
    )


class Program(Frozen):
    id: str
    name: str
    organization: ResourceRef
    # Other identifiers a referrer may address the program by (its organization's identifier comes first).
    other_identifiers: list[Identifier] = Field(default_factory=list)
    referral_codes: ReferralCodes = ReferralCodes()
    tracks: list[Track] = Field(min_length=1)
    roster: list[StaffMember]
    deadlines: Deadlines = Deadlines()
    # The IANA zone the program's days are counted in: "today" for the clinical date rules.
    time_zone: str = "America/New_York"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        time_zone(name)  # refused at load, not at the first session recorded
        return name

    @model_validator(mode="after")
    def _roster_tracks_exist(self) -> Program:
        known = {track.id for track in self.tracks}
        for member in self.roster:
            unknown = set(member.tracks) - known
            if unknown:
                raise ValueError(f"staff {member.id} works on unknown tracks {sorted(unknown)}")
        return self

    @property
    def identifiers(self) -> list[Identifier]:
        """Every identifier that names this program as a performer (NPI first)."""
        own = [self.organization.identifier] if self.organization.identifier else []
        return [*own, *self.other_identifiers]

    def track(self, track_id: str) -> Track:
        for track in self.tracks:
            if track.id == track_id:
                return track
        raise KeyError(f"unknown track {track_id!r}")
