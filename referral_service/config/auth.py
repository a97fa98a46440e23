"""Bearer tokens and dashboard sign-in: the organisation's OpenID Connect provider (``[auth]``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, model_validator

from referral_service.config.codec_keys import PLACEHOLDER_SECRETS, is_aes256_key
from referral_service.ehr.smart_backend_auth import require_secure_url

_SIGN_IN_FIELDS = ("dashboard_client_secret", "public_base_url", "session_key")


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
        if not is_aes256_key(self.session_key.get_secret_value()):
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
