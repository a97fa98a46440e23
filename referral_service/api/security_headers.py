"""Headers every answer carries, HTML pages above all: no script or style from anywhere but this service (and
none inline), no framing, no MIME sniffing, no Referer leaking a referral's URL to another site; and no copy
kept by a browser or proxy cache (``Cache-Control: no-store``) of anything but the stylesheet, since referral
JSON, FHIR Tasks and dashboard pages carry patient data.

A plain ASGI middleware: it only adds headers to the response start, so it never reads or holds a body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The dashboard, sign-in pages and /docs load their stylesheet from /static and run no script at all.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers that predate it
)


NO_STORE = (b"cache-control", b"no-store")
CACHEABLE_PREFIX = "/static/"  # the dashboard's stylesheet: the same for everyone, no patient data


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        wanted = HEADERS if str(scope["path"]).startswith(CACHEABLE_PREFIX) else (*HEADERS, NO_STORE)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in wanted if name not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)
