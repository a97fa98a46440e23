"""The referring EHRs (``[[sources]]``): where each is, its credentials and the limits on calls to it."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from referral_service.ehr.smart_backend_auth import (
    Algorithm,
    SigningKey,
    SmartBackendAuth,
    SmartCredentials,
    load_private_key,
    require_secure_url,
)
from referral_service.ehr.source import SourceConfig
from referral_service.ehr.throttle import CallLimits, SourceThrottle


class SmartBackendSettings(BaseModel):
    """SMART Backend Services credentials the EHR registered for this service (``kind = "smart-backend"``).

    The private key stays in its file (PEM, unencrypted, readable by the service alone); ``load_settings`` checks
    it loads and fits ``algorithm``. ``token_url`` is discovered from the EHR's ``.well-known/smart-configuration``
    when unset; ``jwks_url`` (the registered JWKS) is sent as ``jku``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    kind: Literal["smart-backend"]
    client_id: str = Field(min_length=1)
    private_key_file: Path
    key_id: str = Field(min_length=1)
    algorithm: Algorithm
    scope: str = Field(min_length=1)
    # Strings, not HttpUrl: the EHR compares them character by character with what it registered.
    token_url: str | None = None
    jwks_url: str | None = None

    @model_validator(mode="after")
    def _secure_urls(self) -> SmartBackendSettings:
        for name in ("token_url", "jwks_url"):
            url = getattr(self, name)
            if url is not None:
                require_secure_url(url, f"auth.{name}")
        return self

    def signing_key(self) -> SigningKey:
        """The private key from ``private_key_file``; ``ValueError`` naming the file, never its content."""
        try:
            pem = self.private_key_file.read_bytes()
        except OSError as exc:
            raise ValueError(
                f"auth.private_key_file {str(self.private_key_file)!r} cannot be read ({exc.strerror})"
            ) from None
        try:
            return load_private_key(pem, self.algorithm)
        except ValueError as exc:
            raise ValueError(f"auth.private_key_file {str(self.private_key_file)!r} {exc}") from None

    def credentials(self) -> SmartCredentials:
        return SmartCredentials(
            client_id=self.client_id,
            private_key=self.signing_key(),
            key_id=self.key_id,
            algorithm=self.algorithm,
            scope=" ".join(self.scope.split()),
            token_url=self.token_url,
            jwks_url=self.jwks_url,
        )


class EhrCallLimits(BaseModel):
    """Back-pressure toward one EHR (``referral_service.ehr.throttle``): calls in flight per process, calls a
    second (``burst`` at once after a quiet spell), and how long a call waits for room before its activity is
    handed back to Temporal to retry later. ``shared``: the per-second budget is one for the whole deployment (a
    token bucket in the service database, ``database_url``), for an EHR that limits the service as a whole."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_in_flight: int = Field(default=8, ge=1, le=1000)
    per_second: float = Field(default=50.0, gt=0)
    burst: int = Field(default=10, ge=1)
    max_wait_seconds: float = Field(default=20.0, gt=0, le=300)
    shared: bool = False

    def call_limits(self) -> CallLimits:
        return CallLimits(self.max_in_flight, self.per_second, self.burst, self.max_wait_seconds, self.shared)


class SourceSettings(BaseModel):
    """One referring EHR (a FHIR R4 server): where it is and how to talk to it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    base_url: HttpUrl
    # None for a server that needs no credentials (the HAPI test server).
    auth: SmartBackendSettings | None = None
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # Overrides of what the EHR's CapabilityStatement says it accepts, e.g. {"CarePlan": false}.
    writable: dict[str, bool] = Field(default_factory=dict)
    # Whether the acceptance's writes go as one transaction: None as the CapabilityStatement says; false for an
    # EHR that offers transactions but should get each write alone.
    transactions: bool | None = None
    # How this EHR refers to the program as a performer, e.g. ["Organization/123", "HealthcareService/iop"]:
    # a referral whose performer is one of these is addressed to the program even without an identifier.
    program_references: list[Annotated[str, Field(pattern=r"^[A-Za-z]{1,64}/[A-Za-z0-9\-.]{1,64}$")]] = Field(
        default_factory=list
    )
    # Polling intake: a Temporal Schedule searches this EHR for new or changed ServiceRequests.
    poll: bool = False
    poll_interval_seconds: int = Field(default=900, ge=1)
    limits: EhrCallLimits = EhrCallLimits()

    @model_validator(mode="after")
    def _tokens_stay_encrypted(self) -> SourceSettings:
        if self.auth is not None:
            require_secure_url(str(self.base_url), f"source {self.id!r} base_url (it is sent bearer tokens)")
        return self

    def connection(self, *, timeout_seconds: float | None = None, throttled: bool = True) -> SourceConfig:
        """How the EHR client reaches this source (``timeout_seconds`` overrides, e.g. for a quick probe; a probe
        is not ``throttled``: it must answer within its orchestrator's timeout, not queue behind a burst's writes)."""
        return SourceConfig(
            id=self.id,
            base_url=str(self.base_url).rstrip("/"),
            timeout_seconds=timeout_seconds or self.timeout_seconds,
            auth=self.client_auth,
            writable=dict(self.writable),
            transactions=self.transactions,
            program_references=tuple(self.program_references),
            throttle=self.throttle if throttled else None,
        )

    @functools.cached_property
    def throttle(self) -> SourceThrottle:
        """This source's call limits, made once: every client of the source in this process shares them."""
        return SourceThrottle(self.id, self.limits.call_limits())

    @functools.cached_property
    def client_auth(self) -> SmartBackendAuth | None:
        """This source's credentials, made once: every client of the source shares its cached token."""
        if self.auth is None:
            return None
        return SmartBackendAuth(
            self.auth.credentials(),
            source_id=self.id,
            base_url=str(self.base_url),
            timeout_seconds=self.timeout_seconds,
        )
