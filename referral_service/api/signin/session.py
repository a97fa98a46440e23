"""The dashboard's sign-in state in the browser: two sealed cookies (see ``sealed_cookie``).

- ``iop_signin`` (path ``/auth``, 10 minutes): the PKCE verifier, ``state``, ``nonce`` and where to land,
  between ``/auth/login`` and ``/auth/callback``.
- ``iop_session`` (path ``/``): the user's subject and roles as the verified access token gave them, a CSRF
  token for the dashboard's forms, and the access token's expiry, past which it is refused (the cookie also
  expires then). The tokens themselves are not kept.

Cookies rather than server memory: API processes are stateless and many (ARCHITECTURE.md), and a sign-in
begun on one must finish on any. Both are HttpOnly, SameSite=Lax (the provider's redirect back is a
cross-site navigation) and Secure unless the dashboard is served over plain http on loopback.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from markupsafe import Markup, escape

from referral_service.api.signin.pkce import LoginAttempt, code_challenge
from referral_service.api.signin.provider import DashboardClient, Endpoints, Provider, SignInFailed
from referral_service.api.signin.sealed_cookie import CookieSeal
from referral_service.api.tokens import Principal, Role, TokenRejected, TokenVerifier
from referral_service.config import AuthSettings

ATTEMPT_COOKIE = "iop_signin"
SESSION_COOKIE = "iop_session"
ATTEMPT_SECONDS = 600
# A token this close to its expiry would send the user straight back to the provider, again and again.
MIN_SESSION_SECONDS = 5
CSRF_FIELD = "csrf_token"
_FORM_LIMIT = 64 * 1024
_ROLE_VALUES = frozenset(role.value for role in Role)
DASHBOARD_TAG = "dashboard"  # the dashboard router's tag: its pages take the session cookie


@dataclass(frozen=True)
class BrowserSession:
    principal: Principal
    csrf_token: str
    expires_at: int


class SignIn:
    """Sign-in for one app: the provider, the dashboard's client registration and the sealed cookies."""

    def __init__(self, auth: AuthSettings, verifier: TokenVerifier) -> None:
        # AuthSettings refuses a client id without these.
        assert auth.dashboard_client_id is not None
        assert auth.public_base_url is not None
        assert auth.session_key is not None
        secret = auth.dashboard_client_secret
        self.client = DashboardClient(
            client_id=auth.dashboard_client_id,
            client_secret=secret.get_secret_value() if secret else None,
            redirect_url=auth.public_base_url.rstrip("/") + "/auth/callback",
            scope=" ".join(auth.dashboard_scope.split()),
        )
        self.provider = Provider(auth.issuer)
        self._verifier = verifier
        self._seal = CookieSeal(base64.b64decode(auth.session_key.get_secret_value()))
        self._secure = urlsplit(auth.public_base_url).scheme.lower() == "https"  # plain http: loopback only

    @classmethod
    def configured(cls, auth: AuthSettings | None, verifier: TokenVerifier | None) -> SignIn | None:
        if auth is None or verifier is None or auth.dashboard_client_id is None:
            return None
        return cls(auth, verifier)

    # ---- /auth/login -----------------------------------------------------------------------------

    def authorization_url(self, endpoints: Endpoints, attempt: LoginAttempt) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client.client_id,
                "redirect_uri": self.client.redirect_url,
                "scope": self.client.scope,
                "state": attempt.state,
                "nonce": attempt.nonce,
                "code_challenge": code_challenge(attempt.verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in endpoints.authorization else "?"
        return f"{endpoints.authorization}{separator}{query}"

    def remember_attempt(self, response: Response, attempt: LoginAttempt) -> None:
        payload = {"state": attempt.state, "nonce": attempt.nonce, "verifier": attempt.verifier}
        value = self._seal.seal(
            ATTEMPT_COOKIE, payload | {"next": attempt.next_path}, expires_at=int(time.time()) + ATTEMPT_SECONDS
        )
        self._set(response, ATTEMPT_COOKIE, value, max_age=ATTEMPT_SECONDS, path="/auth")

    # ---- /auth/callback --------------------------------------------------------------------------

    def attempt(self, request: Request) -> LoginAttempt | None:
        opened = self._seal.open(ATTEMPT_COOKIE, request.cookies.get(ATTEMPT_COOKIE), now=time.time())
        if opened is None:
            return None
        return LoginAttempt(
            state=str(opened["state"]),
            nonce=str(opened["nonce"]),
            verifier=str(opened["verifier"]),
            next_path=str(opened["next"]),
        )

    async def complete(self, code: str, attempt: LoginAttempt) -> BrowserSession:
        """Redeem the code and hold both tokens to the API's checks: the session the user gets, or why not."""
        tokens = await self.provider.redeem(code, client=self.client, verifier=attempt.verifier)
        try:
            verified = await self._verifier.access_token(tokens.access_token)
            await self._verifier.id_token(tokens.id_token, client_id=self.client.client_id, nonce=attempt.nonce)
        except TokenRejected as rejected:
            raise SignInFailed(f"the provider's tokens are not accepted here: {rejected}", status=403) from None
        staff_roles = verified.principal.roles - {Role.REFERRING_SYSTEM}
        if not staff_roles:
            raise SignInFailed("your account has none of the dashboard's roles; ask a program admin", status=403)
        if verified.expires_at - time.time() < MIN_SESSION_SECONDS:
            raise SignInFailed("the identity provider issued a token that has (almost) expired", status=403)
        principal = Principal(subject=verified.principal.subject, roles=staff_roles)
        return BrowserSession(principal=principal, csrf_token=secrets.token_urlsafe(32), expires_at=verified.expires_at)

    def start_session(self, response: Response, session: BrowserSession) -> None:
        payload = {
            "sub": session.principal.subject,
            "roles": sorted(session.principal.roles),
            "csrf": session.csrf_token,
        }
        value = self._seal.seal(SESSION_COOKIE, payload, expires_at=session.expires_at)
        self._set(response, SESSION_COOKIE, value, max_age=max(0, session.expires_at - int(time.time())), path="/")
        response.delete_cookie(ATTEMPT_COOKIE, path="/auth", secure=self._secure, httponly=True, samesite="lax")

    # ---- every dashboard request -----------------------------------------------------------------

    def session(self, request: Request) -> BrowserSession:
        """The signed-in user, or ``TokenRejected`` (which sends the browser to sign in)."""
        opened = self._seal.open(SESSION_COOKIE, request.cookies.get(SESSION_COOKIE), now=time.time())
        if opened is None:
            raise TokenRejected("sign in first (no session, or it has expired)")
        roles = frozenset(Role(role) for role in opened.get("roles", []) if role in _ROLE_VALUES)
        return BrowserSession(
            principal=Principal(subject=str(opened["sub"]), roles=roles),
            csrf_token=str(opened["csrf"]),
            expires_at=int(opened["exp"]),
        )

    def end_session(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", secure=self._secure, httponly=True, samesite="lax")

    def _set(self, response: Response, name: str, value: str, *, max_age: int, path: str) -> None:
        response.set_cookie(name, value, max_age=max_age, path=path, secure=self._secure, httponly=True, samesite="lax")


def is_dashboard_page(request: Request) -> bool:
    route = request.scope.get("route")
    return isinstance(route, APIRoute) and DASHBOARD_TAG in route.tags


async def csrf_matches(request: Request, session: BrowserSession) -> bool:
    """Whether the posted form carries this session's CSRF token (SameSite alone leaves old browsers open)."""
    body = await request.body()  # Starlette keeps it: the handler reads the same form
    if len(body) > _FORM_LIMIT:
        return False
    given = parse_qs(body.decode("utf-8", errors="replace")).get(CSRF_FIELD, [""])[0]
    return hmac.compare_digest(given.encode(), session.csrf_token.encode())


def login_redirect_url(request: Request) -> str:
    """``/auth/login`` coming back to this page (a form post comes back to the home page)."""
    if request.method not in ("GET", "HEAD"):
        return "/auth/login"
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/auth/login?next={quote(here, safe='')}"


def browser_context(request: Request) -> dict[str, Any]:
    """What a dashboard page needs to show the signed-in user and put the CSRF token in its forms."""
    session: BrowserSession | None = getattr(request.state, "browser_session", None)
    if session is None:
        return {"csrf_field": Markup(""), "signed_in_as": None}
    field = Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(session.csrf_token))
    return {"csrf_field": field, "signed_in_as": session.principal.subject}
