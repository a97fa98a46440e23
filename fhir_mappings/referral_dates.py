"""When: the hospital discharge a referral steps down from (its encounter, the setting it was), and the checks
that its dates are possible. FHIR dates are strings; a number is refused rather than read as a timestamp."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from fhir_mappings import codes
from fhir_mappings.outcomes import OutcomeIssue, business_rule, invalid
from fhir_mappings.resolve import ResourceIndex, resolved_ref
from referral_service.domain.referral import FromSetting, HospitalDischarge

MAX_FUTURE = timedelta(days=1)


def hospital_discharge(
    sr: dict[str, Any], index: ResourceIndex, issues: list[OutcomeIssue]
) -> HospitalDischarge | None:
    candidates = [sr.get("encounter"), *list(sr.get("supportingInfo") or [])]
    for reference in candidates:
        encounter = index.resolve(reference)
        if encounter is None or encounter.get("resourceType") != "Encounter":
            continue
        period = encounter.get("period") or {}
        start = checked_datetime(period.get("start"), "Encounter.period.start", issues)
        end = checked_datetime(period.get("end"), "Encounter.period.end", issues)
        if start and end and end < start:
            issues.append(invalid("the discharge encounter ends before it starts", "Encounter.period"))
        return HospitalDischarge(
            encounter=resolved_ref(reference, index, "Encounter"),
            from_setting=_setting(encounter),
            discharge_date=end.date() if end else None,
        )
    return None


def _setting(encounter: dict[str, Any]) -> FromSetting:
    """inpatient from the class; PHP and residential from a type code or text (no class exists for them)."""
    types = encounter.get("type") or []
    type_codes = {c.get("code") for t in types for c in t.get("coding") or []}
    text = " ".join(
        [t.get("text") or "" for t in types] + [c.get("display") or "" for t in types for c in t.get("coding") or []]
    ).lower()
    if type_codes & codes.PHP_CODES or any(marker in text for marker in codes.PHP_TEXT):
        return "php"
    if any(marker in text for marker in codes.RESIDENTIAL_TEXT):
        return "residential"
    if (encounter.get("class") or {}).get("code") in codes.INPATIENT_CLASSES:
        return "inpatient"
    if (encounter.get("class") or {}).get("code") == "EMER":
        return "emergency"
    return "other"


def check_dates(
    authored: datetime | None,
    discharge: HospitalDischarge | None,
    received_at: datetime | None,
    issues: list[OutcomeIssue],
) -> None:
    if authored and received_at and authored - received_at > MAX_FUTURE:
        issues.append(business_rule("the referral is authored in the future", "ServiceRequest.authoredOn"))
    if discharge is None or discharge.discharge_date is None:
        return
    if authored and discharge.discharge_date - authored.date() > MAX_FUTURE:
        issues.append(
            business_rule(
                "the hospital discharge is dated after the referral by more than a day",
                "Encounter.period.end",
            )
        )
    if received_at and discharge.discharge_date - received_at.date() > MAX_FUTURE:
        issues.append(business_rule("the hospital discharge date is in the future", "Encounter.period.end"))


def checked_datetime(text: Any, expression: str, issues: list[OutcomeIssue]) -> datetime | None:
    """FHIR JSON dates are strings; pydantic would read a number as a Unix timestamp, so refuse it here."""
    if text is not None and not isinstance(text, str):
        issues.append(invalid("a FHIR dateTime is a string", expression))
    return _datetime(text)


def _datetime(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text) if "T" in text else datetime.fromisoformat(f"{text}T00:00:00+00:00")
    except ValueError:
        return None


def date_of(text: Any) -> date | None:
    parsed = _datetime(text)
    return parsed.date() if parsed else None
