"""The CLI's side of the HTTP API: where it is, one request, and what a refusal or an outage means.

Client commands talk to a running API only (never to Temporal). Every failure becomes a ``CliError``
with the exit code the CLI promises: 1 the server refused (4xx) or the referral does not exist, 2 a usage
error, 3 the API cannot be reached or is unavailable (connection refused, timeout, 5xx).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
API_URL_VARIABLE = "IOP_API_URL"
# A bearer token for an API that requires one; from the environment so it stays out of shell history.
API_TOKEN_VARIABLE = "IOP_API_TOKEN"  # noqa: S105 - the variable's name, not a token
CONNECT_TIMEOUT_S = 5.0
FHIR_JSON = "application/fhir+json"
# Addresses a server binds to that a client cannot dial: talk to this machine instead.
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})  # noqa: S104 - recognised, not bound


class CliError(Exception):
    """What went wrong, already worded for the terminal, and the exit code it means."""

    def __init__(self, message: str, code: int, details: list[str] | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details or []
        self.status = status  # the HTTP status, when the server answered


def api_url(explicit: str | None, from_settings: Callable[[], tuple[str, int]]) -> str:
    """``--api-url``, else ``$IOP_API_URL``, else the configured API host and port."""
    url = explicit or os.environ.get(API_URL_VARIABLE)
    if not url:
        host, port = from_settings()
        host = "127.0.0.1" if host in _WILDCARD_HOSTS else host
        url = f"http://{host}:{port}"
    if not url.startswith(("http://", "https://")):
        raise CliError(f"the API URL must start with http:// or https://, got {url!r}", EXIT_USAGE)
    return url.rstrip("/")


class ApiClient:
    """A short-lived httpx client with bounded timeouts, so an outage is reported in seconds, not hangs."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.base_url = base_url
        self._timeout_s = timeout_s
        token = os.environ.get(API_TOKEN_VARIABLE, "").strip()
        self._http = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
            headers={"Authorization": f"Bearer {token}"} if token else None,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response when it is a success (2xx); otherwise a ``CliError`` that says why."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise CliError(
                f"the API at {self.base_url} did not answer within {self._timeout_s:g}s "
                "(a change may still be applied: check with `referral-service show`)",
                EXIT_UNREACHABLE,
            ) from None
        except httpx.TransportError as error:
            raise CliError(
                f"cannot reach the API at {self.base_url} ({type(error).__name__}): is `referral-service api` "
                f"or `referral-service dev` running? Set --api-url or ${API_URL_VARIABLE}",
                EXIT_UNREACHABLE,
            ) from None
        if response.is_success:
            return response
        raise _refusal(response, method, path)


def body_of(response: httpx.Response) -> Any:
    """A success's JSON body; anything else means the URL is not this service's API."""
    body = _json_or_none(response)
    if body is None:
        raise CliError(
            f"{response.request.method} {response.url} answered {response.status_code} without JSON: "
            "is this the referral service's API?",
            EXIT_UNREACHABLE,
            status=response.status_code,
        )
    return body


def _refusal(response: httpx.Response, method: str, path: str) -> CliError:
    body = _json_or_none(response)
    details = outcome_lines(body) or detail_lines(body)
    where = f"{method} {path}"
    if response.status_code >= 500:
        message = f"the API is unavailable ({response.status_code} on {where}); retry"
        return CliError(message, EXIT_UNREACHABLE, details, response.status_code)
    message = f"the server refused {where} ({response.status_code})"
    if response.status_code == 404 and not details:
        message += f": is {response.url.copy_with(path='/', query=None)} the referral service's API?"
    return CliError(message, EXIT_REFUSED, details, response.status_code)


def outcome_lines(body: Any) -> list[str]:
    """An OperationOutcome's issues as ``severity code expression: diagnostics``, one per line."""
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return []
    lines = []
    for issue in body.get("issue") or []:
        expression = ",".join(issue.get("expression") or [])
        head = " ".join(part for part in (issue.get("severity"), issue.get("code"), expression) if part)
        lines.append(f"{head}: {issue.get('diagnostics', '')}")
    return lines


def detail_lines(body: Any) -> list[str]:
    """FastAPI's ``detail``: a message, or validation errors as ``field: message`` (never the input values)."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return [detail]
    if isinstance(detail, list):
        return [
            f"{'.'.join(str(part) for part in error.get('loc', []))}: {error.get('msg', '')}"
            for error in detail
            if isinstance(error, dict)
        ]
    return []


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
