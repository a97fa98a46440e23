"""Typed errors from a FHIR server, parsed from ``OperationOutcome`` responses.

Each class says whether a retry can help (``retryable``), so activities can map it to Temporal's
retry policy without reading status codes. ``str()`` of an error is safe to log: it holds the status,
issue severities and codes, FHIRPath expressions/locations and ``HAPI-NNNN`` message codes, never the
diagnostics text (a server may echo submitted values, i.e. patient data, there). The full issues stay
on ``.issues`` and ``.diagnostics`` for code that handles them deliberately.

See https://hl7.org/fhir/R4/http.html#summary (status codes) and
https://hl7.org/fhir/R4/operationoutcome.html.
"""

from __future__ import annotations

import email.utils
import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx

_HAPI_CODE = re.compile(r"HAPI-\d+")


class FhirError(Exception):
    """Base class: a FHIR interaction failed.

    ``status`` is the HTTP status (``None`` when no response arrived); ``issues`` are the
    ``OperationOutcome.issue`` entries as the server returned them (empty for non-FHIR responses).
    """

    retryable: bool = False

    def __init__(self, summary: str, *, status: int | None = None, issues: list[dict[str, Any]] | None = None) -> None:
        self.status = status
        self.issues: list[dict[str, Any]] = list(issues or [])
        self.summary = summary
        super().__init__(summary)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep status, issues and retry_after across pickling (the default keeps only ``args``).
        return (self.__class__, (self.summary,), self.__dict__)

    @property
    def diagnostics(self) -> list[str]:
        """The issues' ``diagnostics`` texts (may contain patient data: do not log)."""
        return [str(issue["diagnostics"]) for issue in self.issues if issue.get("diagnostics")]

    def __str__(self) -> str:
        head = f"HTTP {self.status}" if self.status is not None else "no response"
        described = [describe_issue(issue) for issue in self.issues]
        details = "; ".join(text for text in described if text)
        return f"{head}: {self.summary}" + (f" [{details}]" if details else "")


class ConflictError(FhirError):
    """409/412: a concurrent conditional create lost, several resources match a conditional write, or an
    ``If-Match`` version is stale (HAPI answers 409 there, the spec says 412).

    Retryable: re-reading (or re-running the conditional write) and trying again can succeed, e.g. the
    loser of two concurrent conditional creates finds the winner's resource on the next try. A 412 for
    "several resources match" will fail again; callers that care can tell it by ``status``.
    """

    retryable = True


class ValidationError(FhirError):
    """422: the server rejected the resource as invalid (profile, cardinality, code). Not retryable."""


class TransientError(FhirError):
    """429, 5xx, timeouts and connection errors: retryable, after ``retry_after`` seconds if the server
    said so."""

    retryable = True

    def __init__(
        self,
        summary: str,
        *,
        status: int | None = None,
        issues: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(summary, status=status, issues=issues)
        self.retry_after = retry_after


class ThrottledError(TransientError):
    """Not sent: the source's call limits (``referral_service.ehr.throttle``) had no room for it within their
    wait; ``retry_after`` says when to try again."""


class PermanentError(FhirError):
    """Any other 4xx (bad request, forbidden, unsupported), or a response that is not FHIR. Not
    retryable."""


class NotFoundError(PermanentError):
    """404/410: the resource does not exist or was deleted."""


class AuthError(PermanentError):
    """401 from the FHIR server, or an authorization server that refused the client (``smart_backend_auth``): the
    same credentials get the same answer, but fixed credentials can succeed, so writes wait for them."""


def describe_issue(issue: dict[str, Any]) -> str:
    """A PHI-free description of one issue: severity, code, where, and any ``HAPI-NNNN`` code."""
    parts = [str(issue.get(key)) for key in ("severity", "code") if issue.get(key)]
    where = [str(w) for key in ("expression", "location") for w in _as_list(issue.get(key))]
    if where:
        parts.append("at " + ", ".join(dict.fromkeys(where)))
    hapi = _HAPI_CODE.match(str(issue.get("diagnostics", "")))
    if hapi:
        parts.append(hapi.group(0))
    return " ".join(parts)


def error_from_response(response: httpx.Response) -> FhirError:
    """Classify an error response (any status >= 300) into the matching ``FhirError`` subclass."""
    status = response.status_code
    issues, summary = _outcome(response)
    if status in (409, 412):
        return ConflictError(summary, status=status, issues=issues)
    if status == 422:
        return ValidationError(summary, status=status, issues=issues)
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return TransientError(summary, status=status, issues=issues, retry_after=retry_after)
    if status in (404, 410):
        return NotFoundError(summary, status=status, issues=issues)
    if status == 401:
        return AuthError(summary, status=status, issues=issues)
    return PermanentError(summary, status=status, issues=issues)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _outcome(response: httpx.Response) -> tuple[list[dict[str, Any]], str]:
    """The OperationOutcome issues and a PHI-free summary of an error response."""
    reason = httpx.codes.get_reason_phrase(response.status_code) or "error"
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"
    if not response.content:
        return [], f"{reason} (empty body)"
    try:
        body = json.loads(response.content)
    except ValueError:
        return [], f"{reason} (non-FHIR response: {content_type})"
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return [], f"{reason} (expected OperationOutcome, got {_kind(body)})"
    issues = [issue for issue in _as_list(body.get("issue")) if isinstance(issue, dict)]
    return issues, reason


def _kind(body: Any) -> str:
    """What a JSON body is, without echoing arbitrary server text."""
    kind = body.get("resourceType") if isinstance(body, dict) else None
    if isinstance(kind, str) and kind.isalpha() and len(kind) <= 64:
        return kind
    return "JSON " + type(body).__name__


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
