"""Which configured referring EHR sent a referral."""

from __future__ import annotations

from typing import Any

from fhir_mappings import outcomes
from referral_service.config import Settings


def source_for(payload: dict[str, Any], settings: Settings, declared: str | None) -> str | outcomes.OutcomeIssue:
    """The source id: declared in ``X-Referral-Source``, else the one whose base URL the references use,
    else the only one configured. Anything else is an error that says what to send."""
    ids = [source.id for source in settings.sources]
    if declared is not None:
        return (
            declared
            if declared in ids
            else outcomes.not_supported(f"unknown referral source {declared!r}", "X-Referral-Source")
        )
    text = str(payload)
    matching = [s.id for s in settings.sources if str(s.base_url).rstrip("/") + "/" in text]
    if len(matching) == 1:
        return matching[0]
    if len(ids) == 1:
        return ids[0]
    return outcomes.required(
        "cannot tell which referring EHR sent this: use absolute references or the X-Referral-Source header",
        "ServiceRequest.subject",
    )
