"""OperationOutcome helpers named after FHIR issue codes, and one mapping to HTTP status."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["fatal", "error", "warning", "information"]


class OutcomeIssue(BaseModel):
    model_config = ConfigDict(frozen=True)

    severity: Severity = "error"
    code: str
    diagnostics: str
    expression: list[str] = Field(default_factory=list)


def _issue(code: str, diagnostics: str, expression: str | None, severity: Severity = "error") -> OutcomeIssue:
    return OutcomeIssue(
        severity=severity, code=code, diagnostics=diagnostics, expression=[expression] if expression else []
    )


def structure(diagnostics: str, expression: str | None = None) -> OutcomeIssue:
    """The body is not a FHIR resource at all (bad JSON, not an object)."""
    return _issue("structure", diagnostics, expression)


def invalid(diagnostics: str, expression: str | None = None) -> OutcomeIssue:
    return _issue("invalid", diagnostics, expression)


def required(diagnostics: str, expression: str | None = None) -> OutcomeIssue:
    return _issue("required", diagnostics, expression)


def value(diagnostics: str, expression: str | None = None) -> OutcomeIssue:
    return _issue("value", diagnostics, expression)


def not_found(diagnostics: str, expression: str | None = None) -> OutcomeIssue:
    return _issue("not-found", diagnostics, expression)


def not_supported(diagnostics: str, expression: str | None = None) -> OutcomeIssue:
    return _issue("not-supported", diagnostics, expression)


def conflict(diagnostics: str, expression: str | None = None) -> OutcomeIssue:
    return _issue("conflict", diagnostics, expression)


def business_rule(diagnostics: str, expression: str | None = None) -> OutcomeIssue:
    return _issue("business-rule", diagnostics, expression)


def transient(diagnostics: str) -> OutcomeIssue:
    return _issue("transient", diagnostics, None)


def too_costly(diagnostics: str) -> OutcomeIssue:
    return _issue("too-costly", diagnostics, None)


def security(diagnostics: str, *, login: bool) -> OutcomeIssue:
    """``login``: no acceptable credentials (401); otherwise the caller may not do this (403)."""
    return _issue("login" if login else "forbidden", diagnostics, None)


def throttled(diagnostics: str) -> OutcomeIssue:
    return _issue("throttled", diagnostics, None)


def timeout(diagnostics: str) -> OutcomeIssue:
    """The caller was too slow sending its request (408)."""
    return _issue("timeout", diagnostics, None)


_STATUS = {
    "structure": 400,
    "invalid": 400,
    "required": 422,
    "value": 422,
    "business-rule": 422,
    "not-supported": 422,
    "not-found": 404,
    "conflict": 409,
    "transient": 503,
    "too-costly": 413,
    "throttled": 429,
    "timeout": 408,
    "login": 401,
    "forbidden": 403,
}


def http_status(issues: list[OutcomeIssue]) -> int:
    """The status of the most fundamental error: unparseable (400) before unprocessable (422), and so on."""
    statuses = [_STATUS.get(i.code, 400) for i in issues if i.severity in ("fatal", "error")]
    order = [400, 401, 403, 413, 404, 409, 422, 429, 503]
    return min(statuses, key=order.index) if statuses else 200


def operation_outcome(issues: list[OutcomeIssue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.model_dump() for i in issues]}


class UnusableReferral(ValueError):
    """Input that cannot become a referral. str() names issue codes and elements only, never values."""

    def __init__(self, issues: list[OutcomeIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(f"{i.code} at {', '.join(i.expression) or '(resource)'}" for i in issues))
