"""Back-pressure the API holds: on FHIR intake (``[intake]``) and on the HTTP server itself (``[server]``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class IntakeLimits(BaseModel):
    """Back-pressure on ``/fhir``: a referral is a few kB, so a megabyte-sized body is a mistake or an attack,
    and one source's burst must not crowd out the others."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_body_bytes: int = Field(default=1_000_000, ge=1_024)
    per_source_per_minute: float = Field(default=1_200, gt=0)
    burst: int = Field(default=200, ge=1)


class ServerLimits(BaseModel):
    """The API server's own defences against slow and greedy clients (README "Access"); a reverse proxy in
    front should hold tighter ones. Bodies over the limit are refused (413) before they are read whole, and
    only after the caller's token or session is accepted; FHIR intake's own limit is ``intake.max_body_bytes``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    header_timeout_seconds: float = Field(default=10, gt=0)  # from a connection's first byte to its headers
    body_timeout_seconds: float = Field(default=30, gt=0)  # from the headers to the body's last byte (408)
    keep_alive_seconds: int = Field(default=5, ge=1)  # an idle connection between requests
    max_concurrency: int = Field(default=200, ge=1)  # connections and requests at once; beyond: 503
    max_header_bytes: int = Field(default=16_384, ge=1_024)  # request line and headers; beyond: 400
    max_body_bytes: int = Field(default=65_536, ge=1_024)  # the JSON API and the dashboard's forms
    codec_max_body_bytes: int = Field(default=524_288, ge=1_024)  # payloads the Temporal UI sends to decode
