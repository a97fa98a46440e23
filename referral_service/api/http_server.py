"""The API's HTTP server (uvicorn, h11) with the limits of ``Settings.server``: keep-alive, concurrency and
header size from uvicorn, and a header-read timeout uvicorn lacks, so a client that trickles its headers (or
opens a connection and says nothing) cannot hold a connection for minutes. The body's own timeout and size
limit are the gate's (``api.gate``)."""

from __future__ import annotations

import asyncio

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from referral_service.config import Settings
from referral_service.lifetime import activity_grace
from referral_service.logging import get_logger

log = get_logger()
_TOO_SLOW = b"the request headers came too slowly"
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_TOO_SLOW), _TOO_SLOW)
)


def server_config(
    app: ASGIApp, settings: Settings, *, host: str | None = None, port: int | None = None
) -> uvicorn.Config:
    """uvicorn's configuration for ``app`` at ``host``:``port`` (default ``api_host``:``api_port``); its
    logging is the service's own; requests in flight at shut-down get the activities' share of the grace."""
    limits = settings.server
    return uvicorn.Config(
        app,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_config=None,
        access_log=False,
        proxy_headers=False,  # the audit trail trusts forwarding headers from `trusted_proxies` only
        timeout_graceful_shutdown=round(activity_grace(settings.shutdown_grace_seconds).total_seconds()),
        http=header_timeout_protocol(limits.header_timeout_seconds),
        timeout_keep_alive=limits.keep_alive_seconds,
        limit_concurrency=limits.max_concurrency,
        h11_max_incomplete_event_size=limits.max_header_bytes,
    )


def header_timeout_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection (with 408) whose request headers have not all come within
    ``seconds`` of its first byte, or of the connection's opening."""

    class HeaderTimeoutProtocol(H11Protocol):
        _header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the headers are in: the request is the app's now
                self._disarm()
            elif self._header_deadline is None:  # the first byte of a kept-alive connection's next request
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._header_deadline = self.loop.call_later(seconds, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if not self.transport.is_closing():
                log.info("request headers too slow", timeout_seconds=seconds)
                self.transport.write(_REQUEST_TIMEOUT)
                self.transport.close()

    return HeaderTimeoutProtocol
