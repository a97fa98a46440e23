"""SMART Backend Services: system access tokens for a production EHR, as an ``httpx.Auth``.

https://hl7.org/fhir/smart-app-launch/backend-services.html: an OAuth2 ``client_credentials`` grant in which
the client proves itself with a JWT signed by the private key the EHR registered (``private_key_jwt``,
RFC 7523). The token is cached until shortly before it expires, one refresh at a time; a 401 from the FHIR
server drops it and retries the request once. Token-endpoint failures are ``FhirError``s that say whether a
retry can help; neither the assertion nor any token ever appears in a message or a log line.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import time
import uuid
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from referral_service.ehr.errors import AuthError, FhirError, PermanentError, TransientError, parse_retry_after
from referral_service.logging import get_logger

log = get_logger()

Algorithm = Literal["RS384", "ES384"]
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_S = 240  # the spec allows at most 5 minutes; a minute to spare for the EHR's clock
REFRESH_MARGIN_S = 60.0
DEFAULT_EXPIRES_IN_S = 300.0  # the lifetime SMART recommends, for a server that leaves expires_in out
MIN_RSA_BITS = 2048
_OAUTH_ERROR = re.compile(r"[a-z_]{1,64}")  # RFC 6749 error codes; anything else is not echoed
_HINTS = {
    "invalid_client": "check client_id, key_id and the public key the EHR registered",
    "invalid_scope": "the EHR does not grant the requested scope",
    "unauthorized_client": "the EHR does not let this client use client_credentials",
}


@dataclass(frozen=True, slots=True)
class SmartCredentials:
    """What the EHR registered for this service: client id, signing key (with its ``kid`` and, optionally,
    the JWKS URL sent as ``jku``) and the scopes to ask for. ``token_url`` is discovered when ``None``."""

    client_id: str
    private_key: SigningKey = field(repr=False)
    key_id: str
    algorithm: Algorithm
    scope: str
    token_url: str | None = None
    jwks_url: str | None = None


def load_private_key(pem: bytes, algorithm: Algorithm) -> SigningKey:
    """The unencrypted PEM private key in ``pem``, checked to fit ``algorithm`` (RSA >= 2048 bits for RS384,
    EC P-384 for ES384). Raises ``ValueError`` with a message that never quotes the key."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("is not an unencrypted PEM private key") from None
    if algorithm == "RS384" and isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"is an RSA key of {key.key_size} bits; RS384 needs at least {MIN_RSA_BITS}")
        return key
    if algorithm == "ES384" and isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1):
        return key
    needed = "an RSA key" if algorithm == "RS384" else "an EC key on curve P-384"
    raise ValueError(f"does not hold {needed}, which {algorithm} needs")


def require_secure_url(url: str, what: str) -> str:
    """``url`` if it is https, or http to this machine; raises ``ValueError`` naming ``what`` otherwise."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ValueError(f"{what} is not a valid URL") from None
    if parsed.scheme == "https" and parsed.host:
        return url
    if parsed.scheme == "http" and _is_loopback(parsed.host):
        return url
    raise ValueError(f"{what} must be an https URL (http only to loopback)")


def client_assertion(credentials: SmartCredentials, token_url: str, *, now: float) -> str:
    """The signed JWT that authenticates the client at ``token_url`` (Backend Services "Authenticating")."""
    issued = int(now)
    claims = {
        "iss": credentials.client_id,
        "sub": credentials.client_id,
        "aud": token_url,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME_S,
        "jti": uuid.uuid4().hex,
    }
    headers = {"kid": credentials.key_id, "typ": "JWT"}
    if credentials.jwks_url is not None:
        headers["jku"] = credentials.jwks_url
    return jwt.encode(claims, credentials.private_key, algorithm=credentials.algorithm, headers=headers)


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A granted token (never logged) and when to get the next one (``time.monotonic()``)."""

    value: str = field(repr=False)
    scope: str
    expires_in: float
    refresh_at: float

    def fresh(self) -> bool:
        return time.monotonic() < self.refresh_at


class SmartBackendAuth(httpx.Auth):
    """Adds ``Authorization: Bearer`` with a SMART Backend Services token to every request of an async client.

    One instance per source, shared by every client of that source, so they share the cached token.
    ``base_url`` is the FHIR base, for discovering the token endpoint from
    ``[base]/.well-known/smart-configuration`` when the credentials name none.
    """

    requires_request_body = True  # a request retried after a 401 must still have its body

    def __init__(
        self,
        credentials: SmartCredentials,
        *,
        source_id: str,
        base_url: str,
        timeout_seconds: float,
    ) -> None:
        self._credentials = credentials
        self._source_id = source_id
        self._base_url = base_url.rstrip("/")
        self._timeout = httpx.Timeout(timeout_seconds)
        self._token_url = credentials.token_url
        self._token: AccessToken | None = None
        self._refreshing = asyncio.Lock()

    @property
    def granted_scope(self) -> str | None:
        """The scope the EHR granted with the current token (``None`` before the first one)."""
        return self._token.scope if self._token else None

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # Without this, a sync client would silently send requests with no credentials at all.
        raise RuntimeError("SmartBackendAuth works with httpx.AsyncClient only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._current_token()
        request.headers["Authorization"] = f"Bearer {token.value}"
        response = yield request
        if response.status_code == httpx.codes.UNAUTHORIZED:
            self._drop(token)
            request.headers["Authorization"] = f"Bearer {(await self._current_token()).value}"
            yield request

    async def _current_token(self) -> AccessToken:
        token = self._token
        if token is not None and token.fresh():
            return token
        async with self._refreshing:  # callers arriving during a refresh wait for it instead of starting theirs
            if self._token is None or not self._token.fresh():
                self._token = await self._request_token()
            return self._token

    def _drop(self, rejected: AccessToken) -> None:
        # Only the rejected token: a concurrent request may already have replaced it with a good one.
        if self._token is rejected:
            self._token = None

    async def _request_token(self) -> AccessToken:
        async with httpx.AsyncClient(timeout=self._timeout) as http:
            token_url = self._token_url or await self._discover_token_url(http)
            form = {
                "grant_type": "client_credentials",
                "scope": self._credentials.scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(self._credentials, token_url, now=time.time()),
            }
            response = await _call(http, "POST", token_url, "token request", data=form)
        token = _access_token(response, requested_scope=self._credentials.scope)
        self._log_grant(token)
        return token

    async def _discover_token_url(self, http: httpx.AsyncClient) -> str:
        url = f"{self._base_url}/.well-known/smart-configuration"
        response = await _call(http, "GET", url, "SMART configuration request", headers={"Accept": "application/json"})
        token_url = _json_object(response, "SMART configuration").get("token_endpoint")
        if not isinstance(token_url, str):
            raise PermanentError(
                "SMART configuration names no token_endpoint: set token_url", status=response.status_code
            )
        try:
            self._token_url = require_secure_url(token_url, "the discovered token_endpoint")
        except ValueError as exc:
            raise PermanentError(str(exc), status=response.status_code) from None
        return self._token_url

    def _log_grant(self, token: AccessToken) -> None:
        log.info(
            "smart access token granted", source_id=self._source_id, scope=token.scope, expires_in=token.expires_in
        )
        missing = sorted(set(self._credentials.scope.split()) - set(token.scope.split()))
        if missing:
            log.warning("smart scope narrower than requested", source_id=self._source_id, missing_scope=missing)


async def _call(http: httpx.AsyncClient, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
    """One request to the authorization server; failures as ``FhirError``s naming ``what``, never the body."""
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.RequestError as exc:
        raise TransientError(f"{what} failed: {type(exc).__name__}") from None
    if response.status_code >= 300:
        raise _endpoint_error(response, what)
    return response


def _endpoint_error(response: httpx.Response, what: str) -> FhirError:
    """A refusal from the authorization server: transient for 429 and 5xx, else an ``AuthError`` (a retry with the
    same client id, key and scope gets the same answer)."""
    status = response.status_code
    code = _oauth_error(response)
    summary = f"{what} failed" + (f": {code}" if code else "") + (f" ({_HINTS[code]})" if code in _HINTS else "")
    if status == 429 or status >= 500:
        return TransientError(
            summary, status=status, retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    return AuthError(summary, status=status)


def _oauth_error(response: httpx.Response) -> str | None:
    """The RFC 6749 ``error`` code of an error response, if it is one; ``error_description`` is not read."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) and _OAUTH_ERROR.fullmatch(code) else None


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise PermanentError(f"{what} is not a JSON object", status=response.status_code)
    return body


def _access_token(response: httpx.Response, *, requested_scope: str) -> AccessToken:
    """The token of a successful token response, to be replaced ``REFRESH_MARGIN_S`` before it expires (half
    way through a shorter life, so it still serves more than one request). The granted scope is the
    requested one when the server leaves ``scope`` out (RFC 6749 section 5.1)."""
    body = _json_object(response, "token response")
    value, token_type, scope = body.get("access_token"), body.get("token_type", "bearer"), body.get("scope")
    if not isinstance(value, str) or not value:
        raise PermanentError("token response holds no access_token", status=response.status_code)
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise PermanentError("token response is not a bearer token", status=response.status_code)
    granted = scope if isinstance(scope, str) else requested_scope
    expires_in = _expires_in(body)
    refresh_at = time.monotonic() + expires_in - min(REFRESH_MARGIN_S, expires_in / 2)
    return AccessToken(value, granted, expires_in, refresh_at)


def _expires_in(body: dict[str, Any]) -> float:
    """``expires_in`` in seconds (some servers send a string), or the default when absent or unusable."""
    try:
        seconds = float(body.get("expires_in", DEFAULT_EXPIRES_IN_S))
    except (TypeError, ValueError):
        return DEFAULT_EXPIRES_IN_S
    return seconds if seconds > 0 else DEFAULT_EXPIRES_IN_S


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
