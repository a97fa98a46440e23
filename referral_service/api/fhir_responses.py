"""FHIR JSON responses (``application/fhir+json``) and OperationOutcome errors for the intake endpoint."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response

from fhir_mappings.outcomes import OutcomeIssue, http_status, operation_outcome
from referral_service.intake.take_in import IntakeAnswer

FHIR_JSON = "application/fhir+json"


def fhir_response(resource: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(resource), status_code=status, media_type=FHIR_JSON, headers=headers)


def outcome_response(
    issues: list[OutcomeIssue], status: int | None = None, headers: dict[str, str] | None = None
) -> Response:
    return fhir_response(operation_outcome(issues), status or http_status(issues), headers)


def intake_response(answer: IntakeAnswer) -> Response:
    """An intake answer as HTTP: the Task (or Bundle of Tasks, or OperationOutcome), or no content."""
    if answer.body is None:
        return Response(status_code=answer.status, headers=answer.headers)
    return fhir_response(answer.body, answer.status, answer.headers)
