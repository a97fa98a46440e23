"""Error classification from synthetic responses: every status a FHIR server may answer, no server."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from referral_service.ehr.errors import (
    ConflictError,
    FhirError,
    NotFoundError,
    PermanentError,
    TransientError,
    ValidationError,
    error_from_response,
    parse_retry_after,
)

PATIENT_NAME = "Rosalind Okonkwo-Vance"
FHIR_JSON = {"Content-Type": "application/fhir+json;charset=utf-8"}


def outcome(*issues: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": list(issues)}


def issue(code: str, diagnostics: str, **extra: Any) -> dict[str, Any]:
    return {"severity": "error", "code": code, "diagnostics": diagnostics, **extra}


def response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request("POST", "http://ehr.test/fhir/Patient")
    if body is None:
        return httpx.Response(status, headers=headers, request=request)
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers, request=request)
    return httpx.Response(status, json=body, headers={**FHIR_JSON, **(headers or {})}, request=request)


def test_409_stale_version_is_a_retryable_conflict():
    """HAPI answers a stale If-Match with 409; a re-read and retry can succeed."""
    diagnostics = "HAPI-0989: Trying to update Patient/abc/_history/1 but this is not the current version"
    error = error_from_response(response(409, outcome(issue("conflict", diagnostics))))
    assert type(error) is ConflictError
    assert error.status == 409
    assert error.retryable is True
    assert error.diagnostics == [diagnostics]
    assert "HAPI-0989" in str(error)


def test_412_several_matches_is_a_conflict():
    diagnostics = "HAPI-0958: Failed to CREATE resource with match URL because this search matched 2 resources"
    error = error_from_response(response(412, outcome(issue("processing", diagnostics))))
    assert type(error) is ConflictError
    assert error.status == 412
    assert error.retryable is True


def test_422_is_a_validation_error_carrying_issues_but_no_values_in_str():
    """Diagnostics may echo submitted values (patient data): they stay on .issues, out of str()."""
    issues = [
        issue(
            "code-invalid",
            f"HAPI-0450: The value provided ('{PATIENT_NAME}') is not in the value set",
            expression=["Patient.name[0].family"],
            location=["Patient.name[0].family", "Line[1] Col[40]"],
        ),
        {"severity": "warning", "code": "informational", "diagnostics": f"Best practice for {PATIENT_NAME}"},
    ]
    error = error_from_response(response(422, outcome(*issues)))
    assert type(error) is ValidationError
    assert error.retryable is False
    assert error.issues == issues
    assert PATIENT_NAME in error.diagnostics[0]
    text = str(error)
    assert PATIENT_NAME not in text
    assert PATIENT_NAME not in repr(error)
    assert PATIENT_NAME not in str(error.args)
    assert "422" in text
    assert "code-invalid" in text
    assert "Patient.name[0].family" in text
    assert "HAPI-0450" in text


def test_429_with_retry_after_seconds_is_transient():
    error = error_from_response(response(429, outcome(issue("throttled", "slow down")), {"Retry-After": "7"}))
    assert type(error) is TransientError
    assert error.retryable is True
    assert error.retry_after == 7.0


def test_503_with_retry_after_http_date():
    error = error_from_response(response(503, None, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}))
    assert isinstance(error, TransientError)
    assert error.status == 503
    assert error.retry_after is not None
    assert error.retry_after > 0
    assert error.issues == []


def test_retry_after_parsing():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_400_is_permanent():
    diagnostics = "HAPI-0450: Failed to parse request body as JSON resource"
    error = error_from_response(response(400, outcome(issue("processing", diagnostics))))
    assert type(error) is PermanentError
    assert error.retryable is False
    assert error.status == 400


@pytest.mark.parametrize("status", [404, 410])
def test_404_and_410_are_not_found(status):
    diagnostics = "HAPI-2001: Resource Patient/nope is not known"
    error = error_from_response(response(status, outcome(issue("not-found", diagnostics))))
    assert type(error) is NotFoundError
    assert isinstance(error, PermanentError)
    assert error.retryable is False


def test_html_502_from_a_proxy_is_transient_and_says_it_was_not_fhir():
    html = "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
    error = error_from_response(response(502, html, {"Content-Type": "text/html"}))
    assert type(error) is TransientError
    assert error.status == 502
    assert error.issues == []
    assert "non-FHIR response: text/html" in str(error)
    assert "nginx" not in str(error)


def test_html_403_is_permanent():
    error = error_from_response(response(403, "<html>Forbidden</html>", {"Content-Type": "text/html"}))
    assert type(error) is PermanentError
    assert error.status == 403


def test_json_that_is_not_an_operation_outcome():
    error = error_from_response(response(400, {"resourceType": "Patient", "name": [{"text": PATIENT_NAME}]}))
    assert type(error) is PermanentError
    assert "expected OperationOutcome, got Patient" in str(error)
    assert PATIENT_NAME not in str(error)


def test_errors_survive_pickling():
    error = error_from_response(response(429, outcome(issue("throttled", "x")), {"Retry-After": "3"}))
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert isinstance(copy, TransientError)
    assert (copy.status, copy.retry_after, copy.issues) == (429, 3.0, error.issues)
    assert str(copy) == str(error)


def test_all_errors_share_the_base_class():
    for cls in (ConflictError, ValidationError, TransientError, PermanentError, NotFoundError):
        assert issubclass(cls, FhirError)
