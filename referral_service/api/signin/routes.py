"""``/auth/login``, ``/auth/callback`` and ``/auth/logout``: the authorization code flow with PKCE.

Public routes (``access.PUBLIC``): they are how a browser gets a session. They answer 404 where sign-in
is not configured.
"""

from __future__ import annotations

import hmac
from pathlib import Path

import jinja2
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from referral_service.api.signin.pkce import LoginAttempt
from referral_service.api.signin.provider import SignInFailed, oauth_error
from referral_service.api.signin.session import SignIn, csrf_matches
from referral_service.api.tokens import TokenRejected
from referral_service.logging import get_logger

router = APIRouter(prefix="/auth", tags=["sign-in"], include_in_schema=False)
_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
log = get_logger()


@router.get("/login")
async def login(request: Request, next_path: str = Query("/", alias="next")) -> Response:
    """Off to the provider's authorization endpoint, the attempt's secrets sealed in a cookie."""
    sign_in = _sign_in(request)
    try:
        endpoints = await sign_in.provider.endpoints()
    except SignInFailed as failed:
        return _page("Sign-in unavailable", failed.message, failed.status)
    attempt = LoginAttempt.start(next_path)
    response = RedirectResponse(sign_in.authorization_url(endpoints, attempt), status_code=303)
    sign_in.remember_attempt(response, attempt)
    return response


@router.get("/callback")
async def callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    """The provider's redirect back: check ``state``, redeem the code, verify the tokens, start the session."""
    sign_in = _sign_in(request)
    attempt = sign_in.attempt(request)
    if attempt is None:
        return _refused("this sign-in took too long or was started elsewhere; start again", 400, "no-attempt")
    if error:
        return _refused(f"the identity provider did not sign you in ({oauth_error(error)})", 400, oauth_error(error))
    if not code or not hmac.compare_digest(state.encode(), attempt.state.encode()):
        return _refused("this sign-in's state does not match the one started here; start again", 400, "state")
    try:
        session = await sign_in.complete(code, attempt)
    except SignInFailed as failed:
        return _refused(failed.message, failed.status, "refused")
    log.info("dashboard sign-in", status="signed-in")
    response = RedirectResponse(attempt.next_path, status_code=303)
    sign_in.start_session(response, session)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session on every API process and forget it in this browser (the provider's own session is the
    provider's to end)."""
    sign_in = _sign_in(request)
    try:
        session = await sign_in.session(request)
    except TokenRejected:
        session = None
    if session is not None and not await csrf_matches(request, session):
        return _page("Not signed out", "this form is stale: reload the page and sign out again", 403)
    response = _page("Signed out", None, 200)
    await sign_in.end_session(response, session)
    return response


def _sign_in(request: Request) -> SignIn:
    sign_in: SignIn | None = request.app.state.sign_in
    if sign_in is None:
        raise HTTPException(404, detail="dashboard sign-in is not configured")
    return sign_in


def _refused(problem: str, status: int, reason: str) -> Response:
    log.warning("dashboard sign-in refused", status_code=status, error_type=reason)
    return _page("Sign-in failed", problem, status)


def _page(title: str, problem: str | None, status: int) -> HTMLResponse:
    html = _templates.get_template("signin.html").render(title=title, problem=problem)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
