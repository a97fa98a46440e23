"""A stand-in for the organisation's OpenID Connect provider, for the dashboard's sign-in.

Discovery (``/.well-known/openid-configuration``), a JWKS of a key made per test session, an authorization
endpoint that approves whichever test user ``user`` names (no login form) and redirects back with a code, and
a token endpoint that checks what a real provider checks: the client (and its secret when it has one), the
code (once, unexpired), the ``redirect_uri`` the code was issued for and the PKCE ``code_verifier`` against
its S256 ``code_challenge``. It issues RS256 access tokens (audience, program, roles) and id_tokens (the
client as audience, the request's nonce). Served by uvicorn in a thread, on a free loopback port.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from referral_service.codec import KeyRing
from referral_service.config.auth import AuthSettings
from tests.auth_tokens import AUDIENCE, PROGRAM
from tests.loopback_server import serving_asgi

CLIENT_ID = "iop-dashboard"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_ID = "provider-1"


@dataclass(frozen=True)
class StaffUser:
    subject: str
    roles: tuple[str, ...]


CASE_MANAGER = StaffUser("carmen.case-manager", ("case-manager",))
INTAKE_COORDINATOR = StaffUser("ian.intake", ("intake-coordinator",))
PROGRAM_ADMIN = StaffUser("pat.program-admin", ("program-admin",))


@dataclass
class Grant:
    """What one code was issued for."""

    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    user: StaffUser
    expires_at: float


@dataclass
class OidcProvider:
    """The provider's registrations and what it saw; tests read and steer it."""

    redirect_uris: set[str] = field(default_factory=set)  # registered for CLIENT_ID
    client_secret: str | None = None  # None: CLIENT_ID is a public client
    user: StaffUser = CASE_MANAGER
    access_lifetime: int = 300
    deny: bool = False  # the user declines: the provider redirects back with error=access_denied
    replayed_nonce: str | None = None  # set: id_tokens carry this nonce instead of the request's (a replay)
    base_url: str = ""
    grants: dict[str, Grant] = field(default_factory=dict)
    authorization_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return self.base_url

    def access_token(self, *roles: str, subject: str = "system-1", **claims: Any) -> str:
        """An access token as this provider issues them (for API calls the test makes itself)."""
        now = int(time.time())
        body = {"iss": self.issuer, "aud": AUDIENCE, "sub": subject, "iat": now, "exp": now + self.access_lifetime}
        return self._sign(body | {"program": PROGRAM, "roles": list(roles)} | claims)

    async def discovery(self, _: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.base_url}/authorize",
                "token_endpoint": f"{self.base_url}/token",
                "jwks_uri": f"{self.base_url}/jwks",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def jwks(self, _: Request) -> Response:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
        return JSONResponse({"keys": [jwk | {"kid": KEY_ID, "use": "sig", "alg": "RS256"}]})

    async def authorize(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.authorization_requests.append(query)
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != CLIENT_ID or redirect_uri not in self.redirect_uris:
            self.refusals.append("unknown client or redirect_uri")  # never redirect to an unregistered URL
            return Response("unknown client or redirect_uri", status_code=400)
        if self.deny:
            return self._back(redirect_uri, {"error": "access_denied", "state": query.get("state", "")})
        problem = self._authorization_problem(query)
        if problem is not None:
            self.refusals.append(problem)
            return self._back(redirect_uri, {"error": "invalid_request", "state": query.get("state", "")})
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(
            client_id=CLIENT_ID,
            redirect_uri=redirect_uri,
            challenge=query["code_challenge"],
            nonce=query["nonce"],
            user=self.user,
            expires_at=time.time() + 60,
        )
        return self._back(redirect_uri, {"code": code, "state": query["state"]})

    def _authorization_problem(self, query: dict[str, str]) -> str | None:
        if query.get("response_type") != "code":
            return "response_type"
        if "openid" not in query.get("scope", "").split():
            return "scope without openid"
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return "PKCE S256 required"
        if not query.get("state") or not query.get("nonce"):
            return "state and nonce required"
        return None

    async def token(self, request: Request) -> Response:
        form = {name: values[0] for name, values in parse_qs((await request.body()).decode()).items()}
        self.token_requests.append(form)
        problem = self._client_problem(request, form) or self._grant_problem(form)
        if problem is not None:
            self.refusals.append(problem[1])
            return JSONResponse({"error": problem[0], "error_description": problem[1]}, status_code=400)
        grant = self.grants.pop(form["code"])  # one use only
        access = self.access_token(*grant.user.roles, subject=grant.user.subject)
        now = int(time.time())
        id_token = self._sign(
            {"iss": self.issuer, "aud": CLIENT_ID, "sub": grant.user.subject, "iat": now, "exp": now + 300}
            | {"nonce": self.replayed_nonce or grant.nonce}
        )
        return JSONResponse(
            {"access_token": access, "id_token": id_token, "token_type": "Bearer", "expires_in": self.access_lifetime},
            headers={"Cache-Control": "no-store"},
        )

    def _client_problem(self, request: Request, form: dict[str, str]) -> tuple[str, str] | None:
        if self.client_secret is None:
            return None if form.get("client_id") == CLIENT_ID else ("invalid_client", "unknown public client")
        expected = base64.b64encode(f"{CLIENT_ID}:{self.client_secret}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return ("invalid_client", "client authentication failed")
        return None

    def _grant_problem(self, form: dict[str, str]) -> tuple[str, str] | None:
        if form.get("grant_type") != "authorization_code":
            return ("unsupported_grant_type", "grant_type")
        grant = self.grants.get(form.get("code", ""))
        if grant is None or grant.expires_at < time.time():
            return ("invalid_grant", "unknown, used or expired code")
        if form.get("redirect_uri") != grant.redirect_uri:
            return ("invalid_grant", "redirect_uri differs from the authorization request's")
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if challenge != grant.challenge:
            return ("invalid_grant", "code_verifier does not match the code_challenge")
        return None

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": KEY_ID})

    @staticmethod
    def _back(redirect_uri: str, params: dict[str, str]) -> Response:
        return RedirectResponse(f"{redirect_uri}?{urlencode(params)}", status_code=302)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
            ]
        )


def sign_in_settings(provider: OidcProvider, public_base_url: str) -> AuthSettings:
    """``[auth]`` for an API at ``public_base_url`` whose dashboard signs in through ``provider`` (registered there)."""
    provider.redirect_uris.add(f"{public_base_url}/auth/callback")
    return AuthSettings(
        issuer=provider.issuer,
        audience=AUDIENCE,
        jwks_url=f"{provider.base_url}/jwks",
        program=PROGRAM,
        dashboard_client_id=CLIENT_ID,
        dashboard_client_secret=provider.client_secret,
        public_base_url=public_base_url,
        session_key=KeyRing.new_key(),
    )


@contextlib.contextmanager
def serving(provider: OidcProvider) -> Iterator[OidcProvider]:
    """``provider`` on a free loopback port (``base_url`` set) until the block ends."""
    with serving_asgi(provider.app()) as base_url:
        provider.base_url = base_url
        yield provider
