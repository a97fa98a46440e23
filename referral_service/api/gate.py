"""The API's front door, before FastAPI reads anything: which route a request is for, who is calling and
whether they may (``access.authorize``), decided from the headers alone; then the body, held to its route
class's size limit (413) and to the body timeout (408) while it streams in.

A pure ASGI middleware: FastAPI's dependencies run only once it has read and parsed the body, so checking the
token there let anyone make the API read and parse megabytes; BaseHTTPMiddleware would hide the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_mappings import outcomes
from referral_service.api.access import AccessDenied, authorize, denied_response
from referral_service.api.fhir_responses import outcome_response
from referral_service.config import Settings
from referral_service.logging import get_logger

log = get_logger()
# Route classes by path: FHIR intake takes whole referrals (a Bundle with its Patient and Encounter), the codec
# the payloads the Temporal UI shows; everything else (the JSON API, the dashboard's forms) a few fields.
_INTAKE_PREFIXES = ("/fhir", "/subscriptions/")
_CODEC_PREFIX = "/codec/"
_DISCONNECT: Message = {"type": "http.disconnect"}


class AccessGate:
    """Wraps the app; ``routes`` are the routes ``access.POLICY`` covers (others pass, body-limited)."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute], settings: Settings) -> None:
        self._app = app
        self._routes = routes
        self._intake_bytes = settings.intake.max_body_bytes
        self._limits = settings.server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request = Request(scope)
        routed = self._route(scope)
        if routed is not None:
            try:
                await authorize(request)
            except AccessDenied as denied:
                if denied.status == 401:
                    log.info("credentials refused", reason=denied.message)
                await _answer(denied_response(request, denied), scope, send, body_pending=_has_body(request))
                return
        limit = self._body_limit(routed)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _answer(_too_large(request, limit), scope, send, body_pending=True)
            return
        body = _LimitedBody(request, receive, send, limit, self._limits.body_timeout_seconds)
        try:
            await self._app(scope, body.receive, body.send)
        except ClientDisconnect:
            if not body.refused:  # the client left; a body this gate refused only looks so to the app
                raise

    def _route(self, scope: Scope) -> BaseRoute | None:
        """The route this request is for, its template and parameters put in ``scope`` as the router would
        (the refusal's shape, the audit trail and the dashboard's session read them)."""
        for route in self._routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope.update(child_scope)
                return route
        return None  # unknown path, or a method the route does not take: the router answers 404 or 405

    def _body_limit(self, route: BaseRoute | None) -> int:
        path: str = getattr(route, "path", "")
        if path.startswith(_INTAKE_PREFIXES):
            return self._intake_bytes
        if path.startswith(_CODEC_PREFIX):
            return self._limits.codec_max_body_bytes
        return self._limits.max_body_bytes


class _LimitedBody:
    """The body as the app reads it: refused once more than ``limit`` bytes came, or when it has not all come
    ``timeout`` seconds after the headers. The refusal answers the client at once; the app is told the client
    left, and whatever it still sends is dropped."""

    def __init__(self, request: Request, receive: Receive, send: Send, limit: int, timeout: float) -> None:
        self._request = request
        self._receive = receive
        self._send = send
        self._limit = limit
        self._deadline = time.monotonic() + timeout
        self._timeout = timeout
        self._received = 0
        self._complete = False
        self._started = False
        self.refused = False

    async def receive(self) -> Message:
        if self.refused:
            return _DISCONNECT
        if self._complete:  # later calls wait for the client to leave, for as long as the answer takes
            return await self._receive()
        try:
            # Once the answer has started there is no 408 to give: the app alone decides how long it reads.
            async with asyncio.timeout(None if self._started else max(0.0, self._deadline - time.monotonic())):
                message = await self._receive()
        except TimeoutError:
            log.info("request body too slow", timeout_seconds=self._timeout)
            slow = outcomes.timeout(f"the body did not arrive within {self._timeout:g} s")
            return await self._refuse(_refusal(self._request, slow, 408))
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._limit:
                return await self._refuse(_too_large(self._request, self._limit))
            self._complete = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        self._started = self._started or message["type"] == "http.response.start"
        await self._send(message)

    async def _refuse(self, response: Response) -> Message:
        self.refused = True
        if not self._started:
            await _answer(response, self._request.scope, self._send, body_pending=True)
        return _DISCONNECT


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length", "0")
    return "transfer-encoding" in request.headers or not length.isdigit() or int(length) > 0


async def _answer(response: Response, scope: Scope, send: Send, *, body_pending: bool) -> None:
    """Answer without reading the body; a connection whose body is left unread is closed, not drained."""
    if body_pending:
        response.headers["connection"] = "close"
    await response(scope, _never_read, send)


async def _never_read() -> Message:
    return _DISCONNECT  # a plain response never receives; this keeps the body unread if one ever did


def _too_large(request: Request, limit: int) -> Response:
    log.info("request body too large", limit_bytes=limit)
    return _refusal(request, outcomes.too_costly(f"the body is larger than {limit} bytes"), 413)


def _refusal(request: Request, issue: outcomes.OutcomeIssue, status: int) -> Response:
    """As ``access.denied_response``: FHIR callers get an OperationOutcome, everyone else JSON."""
    if request.url.path.startswith("/fhir"):
        return outcome_response([issue], status)
    return JSONResponse({"detail": issue.diagnostics}, status_code=status)
