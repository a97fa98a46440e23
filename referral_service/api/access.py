"""Who may do what: one table of (method, route) -> roles, checked for every route before its body is read
(by ``api.gate``) and so before its handler runs.

A route missing from the table is refused (deny by default), so a new endpoint cannot ship open by accident;
``tests/api/test_access.py`` checks that every route of the app has an entry.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from fhir_mappings import outcomes
from referral_service.api.fhir_responses import outcome_response
from referral_service.api.signin.session import (
    BrowserSession,
    SignIn,
    csrf_matches,
    is_dashboard_page,
    login_redirect_url,
)
from referral_service.api.tokens import LOCAL_USER, Principal, Role, TokenRejected, TokenVerifier

STAFF = frozenset({Role.INTAKE_COORDINATOR, Role.CLINICIAN, Role.CASE_MANAGER, Role.PROGRAM_ADMIN})
SCREENERS = frozenset({Role.INTAKE_COORDINATOR, Role.PROGRAM_ADMIN})
CARE = frozenset({Role.CLINICIAN, Role.CASE_MANAGER, Role.PROGRAM_ADMIN})
# Who staffs a referral's team: its case manager coordinates it, a program admin runs the roster.
TEAM_MANAGERS = frozenset({Role.CASE_MANAGER, Role.PROGRAM_ADMIN})
REFERRERS = frozenset({Role.REFERRING_SYSTEM})
ADMINS = frozenset({Role.PROGRAM_ADMIN})  # the codec server (whole payloads), the audit trail (everyone's steps)

PUBLIC = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/fhir/metadata"),
        ("GET", "/"),
        # Dashboard sign-in: how a browser gets its session.
        ("GET", "/auth/login"),
        ("GET", "/auth/callback"),
        ("POST", "/auth/logout"),
    }
)
POLICY: dict[tuple[str, str], frozenset[Role]] = {
    ("POST", "/fhir/ServiceRequest"): REFERRERS,
    ("POST", "/fhir"): REFERRERS,
    ("POST", "/fhir/Task"): REFERRERS,
    ("PUT", "/subscriptions/{source_id}/ServiceRequest/{request_id}"): REFERRERS,
    ("GET", "/fhir/Task/{task_id}"): REFERRERS | STAFF,
    ("PUT", "/fhir/Task/{task_id}"): REFERRERS,
    ("GET", "/api/referrals"): STAFF,
    ("GET", "/api/referrals/{key}"): STAFF,
    ("POST", "/api/referrals/{key}/decision"): SCREENERS,
    ("POST", "/api/referrals/{key}/sessions"): CARE,
    ("POST", "/api/groups/{group}/sessions"): CARE,
    ("POST", "/api/referrals/{key}/assessments"): CARE,
    ("POST", "/api/referrals/{key}/discharge"): CARE,
    ("POST", "/api/referrals/{key}/follow-ups"): CARE,
    ("POST", "/api/referrals/{key}/team"): TEAM_MANAGERS,
    ("POST", "/api/referrals/{key}/cancel"): CARE,
    ("POST", "/api/referrals/{key}/retry-writes"): CARE,
    ("GET", "/api/measures"): STAFF,
    ("GET", "/api/today"): STAFF,
    ("GET", "/today"): STAFF,
    ("GET", "/inbox"): STAFF,
    ("GET", "/caseload"): STAFF,
    ("GET", "/measures"): STAFF,
    ("POST", "/referrals/{key}/decision"): SCREENERS,
    ("GET", "/referrals/{key}"): STAFF,
    ("POST", "/referrals/{key}/assessments"): CARE,
    ("POST", "/referrals/{key}/discharge"): CARE,
    ("POST", "/referrals/{key}/cancel"): CARE,
    ("POST", "/referrals/{key}/team"): TEAM_MANAGERS,
    ("POST", "/referrals/{key}/retry-writes"): CARE,
    ("GET", "/groups"): STAFF,
    ("POST", "/groups"): CARE,
    ("POST", "/codec/decode"): ADMINS,
    ("POST", "/codec/encode"): ADMINS,
    ("GET", "/api/audit"): ADMINS,
    ("GET", "/audit"): ADMINS,
    # The API's own description: what it offers is for staff and their tools, not for anyone who asks.
    ("GET", "/openapi.json"): STAFF,
    ("GET", "/docs"): STAFF,
    ("GET", "/redoc"): STAFF,
}


class AccessDenied(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def authorize(request: Request) -> None:
    """Find the caller (``request.state.principal``) and check the rule of the route the request matched,
    from its headers alone: ``api.gate`` calls it before any of the body is read."""
    key = route_key(request) or ("GET" if request.method == "HEAD" else request.method, request.url.path)
    if key in PUBLIC:
        return
    allowed = POLICY.get(key)
    if allowed is None:
        raise AccessDenied(403, "no access rule covers this endpoint")
    verifier: TokenVerifier | None = request.app.state.token_verifier
    if verifier is None:
        request.state.principal = LOCAL_USER
        return
    try:
        principal = await _caller(request, verifier)
    except TokenRejected as rejected:
        raise AccessDenied(401, str(rejected)) from rejected
    request.state.principal = principal  # known even when refused below: the audit trail names who tried
    if not principal.roles & allowed:
        raise AccessDenied(403, f"this needs one of the roles: {', '.join(sorted(allowed))}")
    if Role.REFERRING_SYSTEM in principal.roles and principal.source is None:
        raise AccessDenied(403, "a referring system's token must name its source (claim 'source')")


def route_key(request: Request) -> tuple[str, str] | None:
    """(method, route template) of the route the request matched (HEAD as GET), the key of ``POLICY``."""
    route = request.scope.get("route")
    if not isinstance(route, Route):
        return None
    return ("GET" if request.method == "HEAD" else request.method, route.path)


async def _caller(request: Request, verifier: TokenVerifier) -> Principal:
    """The bearer token's caller; on a dashboard page without one, the signed-in browser's (the JSON API and
    FHIR routes take the header alone, so cookies never authenticate them and they need no CSRF defence)."""
    sign_in: SignIn | None = request.app.state.sign_in
    if sign_in is None or "authorization" in request.headers or not is_dashboard_page(request):
        return await verifier.principal(request.headers.get("authorization"))
    session = await sign_in.session(request)
    request.state.browser_session = session
    return session.principal


async def forms_carry_csrf(request: Request) -> None:
    """App-wide dependency: a form posted with the session cookie carries the session's CSRF token. It reads
    the form, so it runs after ``authorize`` and within the gate's body limit."""
    session: BrowserSession | None = getattr(request.state, "browser_session", None)
    if session is not None and request.method not in ("GET", "HEAD") and not await csrf_matches(request, session):
        raise AccessDenied(403, "this form is stale or did not come from the dashboard: reload the page and try again")


def principal_of(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def may_act_for_source(principal: Principal, source_id: str) -> bool:
    """Staff see every source; a referring system only its own."""
    return principal.source is None or principal.source == source_id


def denied_response(request: Request, denied: AccessDenied) -> Response:
    """FHIR callers get an OperationOutcome, everyone else JSON; 401 says how to authenticate."""
    if denied.status == 401 and request.app.state.sign_in is not None and is_dashboard_page(request):
        return RedirectResponse(login_redirect_url(request), status_code=303)
    headers = {"WWW-Authenticate": 'Bearer realm="iop-referrals"'} if denied.status == 401 else None
    if request.url.path.startswith("/fhir"):
        issue = outcomes.security(denied.message, login=denied.status == 401)
        return outcome_response([issue], denied.status, headers)
    return JSONResponse({"detail": denied.message}, status_code=denied.status, headers=headers)
