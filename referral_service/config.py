"""Settings from a TOML file and the environment, checked at start-up.

Order: built-in defaults (the embedded stack), then the TOML file named by ``--config`` or ``IOP_CONFIG``,
then ``IOP_*`` environment variables for the few values operators set per deployment, and the payload
key ring as JSON in ``IOP_CODEC_KEYS`` (``{"active": "k1", "keys": {"k1": "<base64>"}}``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, field_validator, model_validator

from referral_service.codec import KeyRing
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

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "placeholder", "xxx"})
DEFAULT_STATE_DIR = Path(".iop-state")


class SmartBackendSettings(BaseModel):
    """SMART Backend Services credentials the EHR registered for this service (``kind = "smart-backend"``).

    The private key stays in its file (PEM, unencrypted, readable by the service alone); it is checked to
    load and to fit ``algorithm`` at start-up. ``token_url`` is discovered from the EHR's
    ``.well-known/smart-configuration`` when unset; ``jwks_url`` (the registered JWKS) is sent as ``jku``.
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
    def _usable(self) -> SmartBackendSettings:
        self.signing_key()
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


class CodecSettings(BaseModel):
    """AES-256 keys (base64) by key id; ``active`` names the key new payloads use."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)  # keys are secrets

    active: str
    keys: dict[str, str]

    @field_validator("keys")
    @classmethod
    def _real_keys(cls, keys: dict[str, str]) -> dict[str, str]:
        for key_id, value in keys.items():
            if value.strip().lower() in PLACEHOLDER_SECRETS or not _is_aes256_key(value):
                raise ValueError(
                    f"codec key {key_id!r} is a placeholder or not a base64 AES-256 key: set a real key "
                    "(python -c 'from referral_service.codec import KeyRing; print(KeyRing.new_key())')"
                )
        return keys

    @model_validator(mode="after")
    def _active_is_a_key(self) -> CodecSettings:
        if self.active not in self.keys:
            raise ValueError(f"codec active key {self.active!r} is not among the keys {sorted(self.keys)}")
        return self

    def key_ring(self) -> KeyRing:
        return KeyRing.from_base64(self.keys, self.active)


class AuthSettings(BaseModel):
    """Bearer tokens from the organisation's OpenID Connect provider: JWTs signed by a key in its JWKS.

    With ``dashboard_client_id`` the dashboard also signs users in through the same provider (authorization
    code with PKCE); ``public_base_url`` gives the redirect URL (``{public_base_url}/auth/callback``) and
    ``session_key`` (base64 AES-256) seals the sign-in cookies. Without it a browser needs a reverse proxy
    that sets the Authorization header.
    """

    # Inputs stay out of error messages: the client secret and the session key are secrets.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    jwks_url: HttpUrl | None = None
    jwks_file: Path | None = None  # for a provider whose keys are distributed as a file
    # This deployment's program: a token must name it in its ``program`` claim (a string or a list).
    program: str = Field(min_length=1)
    roles_claim: str = "roles"
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    # Dashboard sign-in (all unset: none). The client secret only for a confidential client.
    dashboard_client_id: str | None = Field(default=None, min_length=1)
    dashboard_client_secret: SecretStr | None = None
    dashboard_scope: str = "openid"  # space-separated; whatever else the provider needs to put roles in tokens
    public_base_url: str | None = None  # as browsers reach the API, e.g. https://iop.example.org
    session_key: SecretStr | None = None
    # A dashboard session ends at the first of: sign-out, the access token's expiry, this long after sign-in,
    # or this long without a request.
    session_max_hours: float = Field(default=12, gt=0, le=24 * 7)
    session_idle_minutes: float = Field(default=30, gt=0, le=24 * 60)

    @model_validator(mode="after")
    def _one_key_source(self) -> AuthSettings:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("auth needs exactly one of jwks_url and jwks_file")
        return self

    @model_validator(mode="after")
    def _usable_sign_in(self) -> AuthSettings:
        if self.dashboard_client_id is None:
            given = [name for name in _SIGN_IN_FIELDS if getattr(self, name) is not None]
            if given:  # a typo in the client id's name must not silently leave sign-in off
                raise ValueError(f"auth.{', auth.'.join(given)} need auth.dashboard_client_id")
            return self
        if self.public_base_url is None or self.session_key is None:
            raise ValueError("dashboard sign-in needs auth.public_base_url and auth.session_key")
        require_secure_url(self.public_base_url, "auth.public_base_url")
        if not _is_aes256_key(self.session_key.get_secret_value()):
            raise ValueError(
                "auth.session_key is a placeholder or not a base64 AES-256 key: set a real key "
                "(python -c 'from referral_service.codec import KeyRing; print(KeyRing.new_key())')"
            )
        secret = self.dashboard_client_secret
        if secret is not None and secret.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("auth.dashboard_client_secret is a placeholder: set the secret the provider issued")
        if "openid" not in self.dashboard_scope.split():
            raise ValueError("auth.dashboard_scope must include 'openid'")
        return self


_SIGN_IN_FIELDS = ("dashboard_client_secret", "public_base_url", "session_key")


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class Settings(BaseModel):
    """Everything a worker, the API or the CLI needs to find its servers."""

    # Inputs stay out of error messages: the codec keys are secrets (errors still name the field).
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "iop-referrals"
    temporal_ui_url: str = "http://127.0.0.1:8233"
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    # As callers reach the API (e.g. https://iop.example.org): /fhir/metadata names {it}/fhir, never the Host a
    # request claims. Unset: auth.public_base_url, else http://{api_host}:{api_port}.
    public_base_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    # Where ``referral-service worker`` serves its own /healthz and /readyz; port 0: a free one, logged.
    worker_health_host: str = "127.0.0.1"
    worker_health_port: int = Field(default=8001, ge=0, le=65535)
    # How long start-up keeps retrying an unreachable Temporal server before the process exits non-zero.
    temporal_connect_seconds: float = Field(default=60.0, gt=0, le=3600)
    # SIGTERM to exit, at most: in-flight activities get two thirds of it (lifetime.activity_grace).
    shutdown_grace_seconds: float = Field(default=30.0, ge=3, le=3600)
    state_dir: Path = DEFAULT_STATE_DIR
    log_format: Literal["auto", "json", "console"] = "auto"
    codec: CodecSettings | None = None
    # Tracks, schedules, roster and deadlines; the shipped example program when unset.
    program_file: Path | None = None
    sources: tuple[SourceSettings, ...] = ()
    intake: IntakeLimits = IntakeLimits()
    server: ServerLimits = ServerLimits()
    # None only for an API on this machine alone (the embedded stack, tests): anywhere else it is required.
    auth: AuthSettings | None = None
    # host:port where this process serves Prometheus metrics (its own and the Temporal SDK's); off when unset.
    metrics_address: str | None = Field(default=None, pattern=r"^[^:\s]+:\d{1,5}$")
    # OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces); tracing is off when unset.
    otlp_traces_endpoint: HttpUrl | None = None
    # The service database (audit trail, sign-out revocations): a SQLAlchemy URL such as
    # postgresql+psycopg://user:password@host/iop_service; SQLite at ``state_dir``/service.sqlite when unset.
    database_url: SecretStr | None = None
    # Addresses of the reverse proxies in front of the API: from them alone, the audit trail takes the
    # caller's address from ``client_address_header`` (the rightmost entry no trusted proxy added).
    trusted_proxies: tuple[str, ...] = ()
    client_address_header: str = "X-Forwarded-For"

    @model_validator(mode="after")
    def _unique_sources(self) -> Settings:
        ids = [source.id for source in self.sources]
        if len(ids) != len(set(ids)):
            raise ValueError(f"source ids must be unique, got {ids}")
        return self

    @model_validator(mode="after")
    def _auth_unless_loopback(self) -> Settings:
        if self.auth is None and self.api_host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"api_host {self.api_host!r} is reachable from other machines: configure [auth] "
                "(or IOP_AUTH_ISSUER, IOP_AUTH_AUDIENCE, IOP_AUTH_JWKS_URL, IOP_AUTH_PROGRAM)"
            )
        return self

    @model_validator(mode="after")
    def _shared_keys_with_a_shared_database(self) -> Settings:
        # Every process sealing and reading the shared database's rows must hold the same key ring: the dev
        # key made under ``state_dir`` is one machine's (or one folder's) alone.
        if self.codec is None and self.database_url is not None and "postgresql" in self.database().split(":")[0]:
            raise ValueError(
                "a PostgreSQL service database is shared by several processes: set [codec] (or IOP_CODEC_KEYS) "
                "to the key ring they all use"
            )
        return self

    def source(self, source_id: str) -> SourceSettings:
        for source in self.sources:
            if source.id == source_id:
                return source
        raise KeyError(f"unknown source {source_id!r}; configured: {[s.id for s in self.sources]}")

    def database(self) -> str:
        """The service database's URL (a secret: it may hold a password)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.state_dir / 'service.sqlite'}"

    def key_ring(self) -> KeyRing:
        """The configured key ring, or the stack's own dev key (made once under ``state_dir``)."""
        if self.codec is not None:
            return self.codec.key_ring()
        return dev_key_ring(self.state_dir)


ENV_OVERRIDES = {
    "IOP_TEMPORAL_ADDRESS": "temporal_address",
    "IOP_TEMPORAL_NAMESPACE": "temporal_namespace",
    "IOP_TASK_QUEUE": "task_queue",
    "IOP_TEMPORAL_UI_URL": "temporal_ui_url",
    "IOP_API_HOST": "api_host",
    "IOP_API_PORT": "api_port",
    "IOP_PUBLIC_BASE_URL": "public_base_url",
    "IOP_WORKER_HEALTH_HOST": "worker_health_host",
    "IOP_WORKER_HEALTH_PORT": "worker_health_port",
    "IOP_TEMPORAL_CONNECT_SECONDS": "temporal_connect_seconds",
    "IOP_SHUTDOWN_GRACE_SECONDS": "shutdown_grace_seconds",
    "IOP_STATE_DIR": "state_dir",
    "IOP_LOG_FORMAT": "log_format",
    "IOP_PROGRAM_FILE": "program_file",
    "IOP_METRICS_ADDRESS": "metrics_address",
    "IOP_OTLP_TRACES_ENDPOINT": "otlp_traces_endpoint",
    "IOP_DATABASE_URL": "database_url",
}


# IOP_AUTH_ISSUER, ...; the client secret and the session key belong in the environment rather than a file.
AUTH_ENV = (
    "issuer",
    "audience",
    "jwks_url",
    "program",
    "dashboard_client_id",
    "dashboard_client_secret",
    "public_base_url",
    "session_key",
)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Defaults, then the TOML file, then ``IOP_*`` variables, then explicit overrides."""
    path = path or (Path(os.environ["IOP_CONFIG"]) if os.environ.get("IOP_CONFIG") else None)
    values: dict[str, Any] = tomllib.loads(path.read_text()) if path else {}
    values.update({field: os.environ[var] for var, field in ENV_OVERRIDES.items() if os.environ.get(var)})
    auth_env = {
        field: os.environ[f"IOP_AUTH_{field.upper()}"]
        for field in AUTH_ENV
        if os.environ.get(f"IOP_AUTH_{field.upper()}")
    }
    if auth_env:
        values["auth"] = {**values.get("auth", {}), **auth_env}
    if os.environ.get("IOP_CODEC_KEYS"):  # a secret from the deployment's environment, kept out of files
        values["codec"] = CodecSettings.model_validate_json(os.environ["IOP_CODEC_KEYS"])
    values.update(overrides)
    return Settings.model_validate(values)


def _is_aes256_key(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except binascii.Error:
        return False


def dev_key_ring(state_dir: Path) -> KeyRing:
    """A random key kept in the state folder: for the embedded stack only, never for production."""
    key_file = state_dir / "codec-keys.json"
    if not key_file.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        # Owner-only from the first byte: chmod after writing would leave the key readable for a moment.
        with os.fdopen(os.open(key_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "w") as file:
            json.dump({"active": "dev-1", "keys": {"dev-1": KeyRing.new_key()}}, file)
    return CodecSettings.model_validate_json(key_file.read_text()).key_ring()
