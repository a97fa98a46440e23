"""A referral as the program sees it, independent of how FHIR spelled it."""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FromSetting = Literal["inpatient", "php", "residential", "emergency", "other"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Identifier(Frozen):
    # None: the sender published the identifier without a system (US Core, BSeR and Gravity examples do);
    # it is kept as sent, and a key made from it is scoped to the source.
    system: str | None = None
    value: str

    @property
    def token(self) -> str:
        """As a FHIR token search parameter: ``system|value``, or the value alone (any system)."""
        return f"{self.system}|{self.value}" if self.system else self.value


class Coding(Frozen):
    system: str
    code: str
    display: str | None = None


class ResourceRef(Frozen):
    """A reference to a resource in the referring EHR: by id (and base URL), or only by identifier.

    ``foreign``: the resource lives on another server than the EHR written to (its fullUrl or reference has
    another base), so its id means nothing there and is never written as a literal reference."""

    resource_type: str
    id: str | None = None
    base_url: str | None = None
    identifier: Identifier | None = None
    display: str | None = None
    foreign: bool = False


class PatientDetails(Frozen):
    ref: ResourceRef
    identifiers: list[Identifier] = Field(default_factory=list)
    family: str | None = None
    given: list[str] = Field(default_factory=list)
    birth_date: date | None = None
    gender: str | None = None
    phone: str | None = None  # where staff call the patient (home or mobile)


class HospitalDischarge(Frozen):
    """Where the patient steps down from, and when they left: the start of the follow-up clock."""

    encounter: ResourceRef | None = None
    from_setting: FromSetting
    discharge_date: date | None = None


class Referral(Frozen):
    source_id: str
    service_request: ResourceRef
    placer_identifier: Identifier
    status: str
    intent: str
    priority: str | None = None
    authored_on: datetime | None = None
    patient: PatientDetails
    requester: ResourceRef | None = None
    requester_organization: ResourceRef | None = None
    performer: ResourceRef | None = None
    codes: list[Coding] = Field(default_factory=list)
    reasons: list[Coding] = Field(default_factory=list)
    discharge: HospitalDischarge | None = None
    coverage: list[ResourceRef] = Field(default_factory=list)
    note: str | None = None
    # What intake could not do as the sender meant (e.g. a patient it could not link): no patient data.
    warnings: list[str] = Field(default_factory=list)

    def references(self) -> Referral:
        """What a write to the EHR needs of the referral: its source and the references a written resource carries
        (the order, the patient's record, the requester), none of the patient's details. Each write's input is
        kept in the workflow's history: this keeps the history short and the patient's details out of it."""
        return Referral(
            source_id=self.source_id,
            service_request=self.service_request,
            placer_identifier=self.placer_identifier,
            status=self.status,
            intent=self.intent,
            patient=PatientDetails(ref=self.patient.ref),
            requester=self.requester,
        )


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_KEY = 120


def referral_key(source_id: str, placer_identifier: Identifier) -> str:
    """The workflow id: stable for the same referral from the same source, safe characters only.

    Made from the source id and the ServiceRequest's placer identifier (an order number, not PHI); a hash
    of the exact system and value keeps two identifiers that sanitise alike apart.
    """
    digest = hashlib.sha256(f"{source_id}|{placer_identifier.system}|{placer_identifier.value}".encode())
    readable = _UNSAFE.sub("-", placer_identifier.value).strip("-")[: _MAX_KEY - len(source_id) - 12]
    return f"{source_id}.{readable}.{digest.hexdigest()[:10]}"
