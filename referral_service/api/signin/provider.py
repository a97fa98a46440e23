"""The OpenID Connect provider as the dashboard's sign-in sees it: discovery and the code exchange.

Messages name what failed and, for a refusal, the OAuth error code; never a code, token or secret.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from referral_service.ehr.smart_backend_auth import require_secure_url
from referral_service.logging import get_logger

DISCOVERY_TTL_SECONDS = 3600
TIMEOUT_SECONDS = 5.0
_OAUTH_ERROR = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # what of the provider's answer may be repeated

log = get_logger()


class SignInFailed(Exception):
    """The sign-in cannot finish; ``status`` is the page's HTTP status, the message says why for the user."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str


@dataclass(frozen=True)
class DashboardClient:
    """The dashboard as the provider registered it."""

    client_id: str
    client_secret: str | None  # None: a public client (PKCE alone proves the redeemer)
    redirect_url: str
    scope: str


@dataclass(frozen=True)
class Tokens:
    access_token: str
    id_token: str


def oauth_error(value: object) -> str:
    """An OAuth error code fit to show and log, or ``unknown``."""
    return value if isinstance(value, str) and _OAUTH_ERROR.match(value) else "unknown"


class Provider:
    def __init__(self, issuer: str) -> None:
        self._issuer = issuer
        self._endpoints: Endpoints | None = None
        self._read_at = 0.0

    async def endpoints(self) -> Endpoints:
        """From ``{issuer}/.well-known/openid-configuration``, kept for an hour."""
        if self._endpoints is None or time.monotonic() - self._read_at > DISCOVERY_TTL_SECONDS:
            self._endpoints = await self._discover()
            self._read_at = time.monotonic()
        return self._endpoints

    async def _discover(self) -> Endpoints:
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as http:
                response = await http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
            if document.get("issuer") != self._issuer:  # OpenID Connect Discovery 4.3
                raise ValueError("the discovery document names another issuer")
            return Endpoints(
                authorization=require_secure_url(document["authorization_endpoint"], "authorization_endpoint"),
                token=require_secure_url(document["token_endpoint"], "token_endpoint"),
            )
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            log.warning("sign-in discovery failed", error_type=type(error).__name__)
            raise SignInFailed("the identity provider cannot be reached; try again shortly", status=502) from None

    async def redeem(self, code: str, *, client: DashboardClient, verifier: str) -> Tokens:
        """The authorization code and the PKCE verifier for tokens, at the token endpoint."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client.redirect_url,
            "code_verifier": verifier,
        }
        headers = {"Accept": "application/json"}
        if client.client_secret is None:
            form["client_id"] = client.client_id
        else:  # client_secret_basic: both halves form-encoded first (RFC 6749 2.3.1)
            pair = f"{quote(client.client_id, safe='')}:{quote(client.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        token_url = (await self.endpoints()).token
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as http:
                response = await http.post(token_url, data=form, headers=headers)
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            log.warning("sign-in code exchange failed", error_type=type(error).__name__)
            raise SignInFailed("the identity provider cannot be reached; try again shortly", status=502) from None
        if response.status_code != 200 or not isinstance(body, dict):
            error_code = oauth_error(body.get("error") if isinstance(body, dict) else None)
            log.warning("sign-in code exchange refused", status_code=response.status_code, error_type=error_code)
            status = 400 if response.status_code < 500 else 502
            raise SignInFailed(f"the identity provider refused the sign-in ({error_code}); start again", status=status)
        if not isinstance(body.get("access_token"), str) or not isinstance(body.get("id_token"), str):
            raise SignInFailed("the identity provider's answer lacks an access token or an id_token", status=502)
        return Tokens(access_token=body["access_token"], id_token=body["id_token"])
