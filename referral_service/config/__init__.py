"""Settings from a TOML file and the environment, checked at start-up (pydantic-settings).

Order: built-in defaults (the embedded stack), then the TOML file named by ``--config`` or ``IOP_CONFIG``,
then ``IOP_*`` environment variables (``IOP_API_PORT``; ``IOP_AUTH_ISSUER`` for ``auth.issuer``), and the payload
key ring as JSON in ``IOP_CODEC_KEYS`` (``{"active": "k1", "keys": {"k1": "<base64>"}}``). ``load_settings`` is the
factory: it reads the files the settings name (the TOML file, each source's private key) and says which one is
unusable; validators check values only.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, HttpUrl, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from referral_service.codec import KeyRing
from referral_service.config.auth import AuthSettings
from referral_service.config.codec_keys import CodecSettings
from referral_service.config.limits import IntakeLimits, ServerLimits
from referral_service.config.sources import SourceSettings

DEFAULT_STATE_DIR = Path(".iop-state")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class ConfigFile(PydanticBaseSettingsSource):
    """The TOML file named by the sources above it (``config``: given in code, or $IOP_CONFIG). A named file
    that cannot be read is an error, not an empty file."""

    def __call__(self) -> dict[str, Any]:
        named = self.current_state.get("config")
        if named is None:
            return {}
        values: dict[str, Any] = tomllib.loads(Path(named).read_text())
        return values

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the whole file at once


class Settings(BaseSettings):
    """Everything a worker, the API or the CLI needs to find its servers."""

    # Inputs stay out of error messages: the codec keys are secrets (errors still name the field). Every field is
    # also an IOP_* variable (IOP_API_PORT, IOP_AUTH_ISSUER for auth.issuer); an empty one is unset.
    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        hide_input_in_errors=True,
        env_prefix="IOP_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_ignore_empty=True,
    )

    # The TOML file the rest is read from (``--config``, else $IOP_CONFIG); built-in defaults alone when unset.
    config: Path | None = None

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
    # The payload key ring; from the environment as JSON in IOP_CODEC_KEYS (a secret kept out of files).
    codec: CodecSettings | None = Field(default=None, validation_alias=AliasChoices("codec", "IOP_CODEC_KEYS"))
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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest first: values given in code, IOP_* variables, the TOML file, then the defaults."""
        return init_settings, env_settings, ConfigFile(settings_cls)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Defaults, then the TOML file, then ``IOP_*`` variables, then explicit overrides; then each source's private
    key is opened, so a missing or unfitting key stops the start with its file's name (``ValueError``)."""
    given: dict[str, Any] = {"config": path} if path else {}
    settings = Settings(**given, **overrides)
    for source in settings.sources:
        if source.auth is not None:
            source.auth.signing_key()
    return settings


def dev_key_ring(state_dir: Path) -> KeyRing:
    """A random key kept in the state folder: for the embedded stack only, never for production."""
    key_file = state_dir / "codec-keys.json"
    if not key_file.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        # Owner-only from the first byte: chmod after writing would leave the key readable for a moment.
        with os.fdopen(os.open(key_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "w") as file:
            json.dump({"active": "dev-1", "keys": {"dev-1": KeyRing.new_key()}}, file)
    return CodecSettings.model_validate_json(key_file.read_text()).key_ring()
