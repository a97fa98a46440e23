"""Every code system and code the service reads or writes, in one place (see DOMAIN.md, "Codes")."""

from __future__ import annotations

from referral_service.domain.assessment import Instrument
from referral_service.domain.discharge import DeclineReason, DischargeReason
from referral_service.domain.program import SessionKind, StaffRole

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
NUCC = "http://nucc.org/provider-taxonomy"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
US_CORE_CAREPLAN_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

SERVICE_SYSTEM_BASE = "https://iop-referrals.example.org/fhir"
RESOURCE_KEY_SYSTEM = f"{SERVICE_SYSTEM_BASE}/sid/resource-key"
# Keys a referral without an order number: the ServiceRequest's id (or Bundle fullUrl) in its source EHR.
SOURCE_RESOURCE_SYSTEM = f"{SERVICE_SYSTEM_BASE}/sid/source-resource"
BUSINESS_STATUS_SYSTEM = f"{SERVICE_SYSTEM_BASE}/CodeSystem/referral-business-status"
DECLINE_REASON_SYSTEM = f"{SERVICE_SYSTEM_BASE}/CodeSystem/decline-reason"
DISCHARGE_REASON_SYSTEM = f"{SERVICE_SYSTEM_BASE}/CodeSystem/discharge-reason"
CANCEL_REASON_SYSTEM = f"{SERVICE_SYSTEM_BASE}/CodeSystem/cancel-reason"
OUTPUT_TYPE_SYSTEM = f"{SERVICE_SYSTEM_BASE}/CodeSystem/task-output-type"
# Work the program asks of the referring side; no standard Task code says "reach out to the patient".
PROGRAM_TASK_SYSTEM = f"{SERVICE_SYSTEM_BASE}/CodeSystem/program-task"
OUTREACH = ("outreach", "Reach out to the patient after missed sessions")

# Which ServiceRequest codes count as referrals is program data: ReferralCodes in domain/program.py.

# BSeR / IHE 360X referral events, carried in Task.businessStatus.
BUSINESS_STATUS = {
    "created": "Referral received",
    "waitlisted": "Waitlisted",
    "accepted": "Referral accepted",
    "declined": "Referral declined",
    "event-scheduled": "Intake scheduled",
    "in-treatment": "Attending the program",
    "unattended": "Session not attended",
    "cancellation-requested": "Cancellation requested",
    "cancellation-confirmed": "Cancellation confirmed",
    "transferred": "Transferred to another level of care",
    "fulfillment-completed": "Program completed",
}

ROLE_NUCC = {
    StaffRole.PRESCRIBER: ("2084P0800X", "Psychiatry & Neurology, Psychiatry"),
    StaffRole.PRIMARY_THERAPIST: ("1041C0700X", "Social Worker, Clinical"),
    StaffRole.CASE_MANAGER: ("171M00000X", "Case Manager/Care Coordinator"),
    StaffRole.NURSE: ("163W00000X", "Registered Nurse"),
    StaffRole.PEER_SPECIALIST: ("175T00000X", "Peer Specialist"),
}

SESSION_CPT = {
    SessionKind.GROUP: ("90853", "Group psychotherapy"),
    SessionKind.INDIVIDUAL: ("90834", "Psychotherapy, 45 minutes"),
    SessionKind.FAMILY: ("90847", "Family psychotherapy with patient present"),
    SessionKind.PSYCHOEDUCATION: ("90853", "Group psychotherapy (psychoeducation)"),
    SessionKind.MEDICATION_MANAGEMENT: ("99214", "Office visit, established patient (medication management)"),
}

# The score each instrument is written as (LOINC; DOMAIN.md "Measures"). C-SSRS: the screener code, its
# display unverified, so none is sent (the instrument name goes in CodeableConcept.text).
ASSESSMENT_LOINC: dict[Instrument, tuple[str, str | None]] = {
    Instrument.PHQ_9: ("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
    Instrument.GAD_7: ("70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]"),
    Instrument.AUDIT_C: ("75626-2", "Total score [AUDIT-C]"),
    Instrument.C_SSRS: ("93373-9", None),
}

MODALITY_CLASS = {"in_person": ("AMB", "ambulatory"), "telehealth": ("VR", "virtual")}

DECLINE_DISPLAY = {
    DeclineReason.NO_CAPACITY: "No capacity",
    DeclineReason.NOT_ELIGIBLE: "Not eligible",
    DeclineReason.CLINICAL_MISMATCH: "Needs a different level of care",
    DeclineReason.INSURANCE: "Coverage not accepted",
    DeclineReason.PATIENT_DECLINED: "Patient declined",
    DeclineReason.REFERRED_ELSEWHERE: "Referred elsewhere",
    DeclineReason.COULD_NOT_CONTACT: "Could not contact",
}

DISCHARGE_DISPLAY = {
    DischargeReason.COMPLETED: "Completed program",
    DischargeReason.TRANSFERRED: "Transferred to another level of care",
    DischargeReason.LEFT_AGAINST_ADVICE: "Left against advice",
    DischargeReason.DROPPED_OUT: "Dropped out / lost contact",
    DischargeReason.ADMINISTRATIVE: "Administrative discharge",
    DischargeReason.OTHER: "Other",
}

# Discharge encounter class (v3-ActCode) -> the setting the patient steps down from.
INPATIENT_CLASSES = frozenset({"IMP", "ACUTE", "NONAC"})
# PHP has no v3-ActCode of its own: HAPI and most EHRs send class AMB/IMP plus this HCPCS or a type text.
PHP_CODES = frozenset({"G0410", "G0411", "0912", "0913"})
PHP_TEXT = ("partial hospital", "php")
RESIDENTIAL_TEXT = ("residential",)
