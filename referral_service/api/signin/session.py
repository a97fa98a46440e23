"""The dashboard's sign-in state in the browser: two sealed cookies (see ``sealed_cookie``).

- ``iop_signin`` (path ``/auth``, 10 minutes): the PKCE verifier, ``state``, ``nonce`` and where to land,
  between ``/auth/login`` and ``/auth/callback``.
- ``iop_session`` (path ``/``): the user's subject and roles as the verified access token gave them, a CSRF
  token for the dashboard's forms, a random session id, and when the user signed in and was last seen. The
  tokens themselves are not kept.

A session ends at the first of: sign-out (its id goes into the service database's revocation list, which
every API process reads), the access token's expiry, ``session_max_hours`` after sign-in, or
``session_idle_minutes`` without a request (each request renews "last seen", at most once a minute).

Cookies rather than server memory: API processes are stateless and many (ARCHITECTURE.md), and a sign-in
begun on one must finish on any. Both are HttpOnly, SameSite=Lax (the provider's redirect back is a
cross-site navigation) and Secure unless the dashboard is served over plain http on loopback.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
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
from referral_service.config.auth import AuthSettings
from referral_service.store.revocations import SessionRevocations

ATTEMPT_COOKIE = "iop_signin"
SESSION_COOKIE = "iop_session"
ATTEMPT_SECONDS = 600
# A token this close to its expiry would send the user straight back to the provider, again and again.
MIN_SESSION_SECONDS = 5
CSRF_FIELD = "csrf_token"
# "Last seen" is renewed when older than this (or a quarter of the idle timeout): often enough for the idle
# timeout, rarely enough that most answers set no cookie.
SEEN_RENEWAL_SECONDS = 60
_ROLE_VALUES = frozenset(role.value for role in Role)
DASHBOARD_TAG = "dashboard"  # the dashboard router's tag: its pages take the session cookie


@dataclass(frozen=True)
class BrowserSession:
    principal: Principal
    csrf_token: str
    expires_at: int
    session_id: str
    signed_in_at: int
    seen_at: int


class SignIn:
    """Sign-in for one app: the provider, the dashboard's client registration and the sealed cookies."""

    def __init__(self, auth: AuthSettings, verifier: TokenVerifier, revocations: SessionRevocations) -> None:
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
        self._revocations = revocations
        self._max_seconds = int(auth.session_max_hours * 3600)
        self._idle_seconds = int(auth.session_idle_minutes * 60)
        self._renew_after = max(1, min(SEEN_RENEWAL_SECONDS, self._idle_seconds // 4))
        self._seal = CookieSeal(base64.b64decode(auth.session_key.get_secret_value()))
        self._secure = urlsplit(auth.public_base_url).scheme.lower() == "https"  # plain http: loopback only

    @classmethod
    def configured(
        cls, auth: AuthSettings | None, verifier: TokenVerifier | None, revocations: SessionRevocations
    ) -> SignIn | None:
        if auth is None or verifier is None or auth.dashboard_client_id is None:
            return None
        return cls(auth, verifier, revocations)

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
        now = int(time.time())
        return BrowserSession(
            principal=principal,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=min(verified.expires_at, now + self._max_seconds),  # a 10-year token: still 12 hours
            session_id=secrets.token_urlsafe(32),
            signed_in_at=now,
            seen_at=now,
        )

    def start_session(self, response: Response, session: BrowserSession) -> None:
        self._keep(response, session)
        response.delete_cookie(ATTEMPT_COOKIE, path="/auth", secure=self._secure, httponly=True, samesite="lax")

    def _keep(self, response: Response, session: BrowserSession) -> None:
        payload = {
            "sub": session.principal.subject,
            "roles": sorted(session.principal.roles),
            "csrf": session.csrf_token,
            "sid": session.session_id,
            "iat": session.signed_in_at,
            "seen": session.seen_at,
        }
        value = self._seal.seal(SESSION_COOKIE, payload, expires_at=session.expires_at)
        self._set(response, SESSION_COOKIE, value, max_age=max(0, session.expires_at - int(time.time())), path="/")

    # ---- every dashboard request -----------------------------------------------------------------

    async def session(self, request: Request) -> BrowserSession:
        """The signed-in user, or ``TokenRejected`` (which sends the browser to sign in)."""
        now = int(time.time())
        opened = self._seal.open(SESSION_COOKIE, request.cookies.get(SESSION_COOKIE), now=now)
        if opened is None or not isinstance(opened.get("sid"), str):  # a cookie from before session ids
            raise TokenRejected("sign in first (no session, or it has expired)")
        session = BrowserSession(
            principal=Principal(
                subject=str(opened["sub"]),
                roles=frozenset(Role(role) for role in opened.get("roles", []) if role in _ROLE_VALUES),
            ),
            csrf_token=str(opened["csrf"]),
            expires_at=int(opened["exp"]),
            session_id=opened["sid"],
            signed_in_at=int(opened["iat"]),
            seen_at=int(opened["seen"]),
        )
        if now - session.seen_at > self._idle_seconds:
            raise TokenRejected("the session ended after a time without use: sign in again")
        if now - session.signed_in_at > self._max_seconds:  # a cookie sealed before the cap was lowered
            raise TokenRejected("the session reached its time limit: sign in again")
        if await self._revocations.is_revoked(session.session_id):
            raise TokenRejected("this session was signed out: sign in again")
        return session

    def renew_seen(self, response: Response, session: BrowserSession) -> None:
        """Move "last seen" to now on ``response``'s cookie, at most once a minute (the idle timeout's clock)."""
        now = int(time.time())
        if now - session.seen_at >= self._renew_after and "set-cookie" not in response.headers:
            self._keep(response, replace(session, seen_at=now))

    async def end_session(self, response: Response, session: BrowserSession | None) -> None:
        """Sign out: the session is revoked for every API process (a copied cookie is dead too), and forgotten here."""
        if session is not None:
            await self._revocations.revoke(session.session_id, until=session.expires_at)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=self._secure, httponly=True, samesite="lax")

    def _set(self, response: Response, name: str, value: str, *, max_age: int, path: str) -> None:
        response.set_cookie(name, value, max_age=max_age, path=path, secure=self._secure, httponly=True, samesite="lax")


async def renewing_sessions(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """HTTP middleware: a signed-in page's answer carries the session's renewed "last seen"."""
    response = await call_next(request)
    session: BrowserSession | None = getattr(request.state, "browser_session", None)
    sign_in: SignIn | None = request.app.state.sign_in
    if session is not None and sign_in is not None:
        sign_in.renew_seen(response, session)
    return response


def is_dashboard_page(request: Request) -> bool:
    route = request.scope.get("route")
    return isinstance(route, APIRoute) and DASHBOARD_TAG in route.tags


async def csrf_matches(request: Request, session: BrowserSession) -> bool:
    """Whether the posted form carries this session's CSRF token (SameSite alone leaves old browsers open)."""
    # Starlette keeps the body for the handler; the gate has held it to the route's size limit already.
    body = await request.body()
    given = parse_qs(body.decode("utf-8", errors="replace")).get(CSRF_FIELD, [""])[0]
    return hmac.compare_digest(given.encode(), session.csrf_token.encode())


SEARCH_PARAM = "q"


def login_redirect_url(request: Request) -> str:
    """``/auth/login`` coming back to this page (a form post comes back to the home page), without the search
    text: ``q`` is a patient's name or order number, which must not ride in a URL the sign-in carries about."""
    if request.method not in ("GET", "HEAD"):
        return "/auth/login"
    query = urlencode([(name, value) for name, value in request.query_params.multi_items() if name != SEARCH_PARAM])
    here = request.url.path + (f"?{query}" if query else "")
    return f"/auth/login?next={quote(here, safe='')}"


def browser_context(request: Request) -> dict[str, Any]:
    """What a dashboard page needs to show the signed-in user and put the CSRF token in its forms."""
    session: BrowserSession | None = getattr(request.state, "browser_session", None)
    if session is None:
        return {"csrf_field": Markup(""), "signed_in_as": None}
    field = Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(session.csrf_token))
    return {"csrf_field": field, "signed_in_as": session.principal.subject}
