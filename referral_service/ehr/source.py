"""Where a FHIR source lives and how to reach it: one ``SourceConfig`` per referring EHR."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from referral_service.ehr.throttle import SourceThrottle


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One FHIR R4 server the service talks to.

    ``auth`` is the hook for credentials: ``None`` for the HAPI test server; a production EHR plugs in its
    ``SmartBackendAuth`` (``smart_backend_auth.py``: client credentials with a signed JWT) here.
    ``base_url`` must be an absolute http(s) URL; a trailing slash is removed. ``writable`` overrides what
    the server's CapabilityStatement says it accepts, by resource type (e.g. ``{"CarePlan": False}``), and
    ``transactions`` whether it takes transaction Bundles (None: as the statement says).
    """

    id: str
    base_url: str
    timeout_seconds: float = 30.0
    auth: httpx.Auth | None = field(default=None, repr=False, compare=False)
    writable: Mapping[str, bool] = field(default_factory=dict, compare=False)
    transactions: bool | None = None
    # Relative references (``Type/id``) by which this EHR names the program as a performer.
    program_references: tuple[str, ...] = ()
    throttle: SourceThrottle | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.id.strip():
            raise ValueError("SourceConfig.id must not be empty")
        object.__setattr__(self, "base_url", validate_base_url(self.base_url))
        if not self.timeout_seconds > 0:
            raise ValueError("SourceConfig.timeout_seconds must be positive")


def validate_base_url(base_url: str) -> str:
    """Return ``base_url`` without a trailing slash, or raise ``ValueError`` if it is not absolute http(s)."""
    try:
        url = httpx.URL(base_url.strip())
    except httpx.InvalidURL as exc:
        raise ValueError(f"FHIR base URL is not a valid URL: {base_url!r}") from exc
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError(f"FHIR base URL must be an absolute http(s) URL: {base_url!r}")
    if url.query or url.fragment:
        raise ValueError(f"FHIR base URL must not carry a query or fragment: {base_url!r}")
    return str(url).rstrip("/")
