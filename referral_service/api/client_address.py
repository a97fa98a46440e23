"""The caller's address for the audit trail: the connection's peer, unless that peer is one of the
deployment's own reverse proxies, whose forwarding header then names the caller. A header from anyone else
is ignored, so a caller cannot write someone else's address into the trail."""

from __future__ import annotations

from fastapi import Request


def client_address(request: Request, trusted_proxies: frozenset[str], header: str) -> str | None:
    peer = request.client.host if request.client else None
    if peer is None or peer not in trusted_proxies:
        return peer
    hops = [hop.strip() for hop in request.headers.get(header, "").split(",") if hop.strip()]
    # Each proxy appends the address it was reached from: the rightmost hop no proxy of ours added.
    return next((hop for hop in reversed(hops) if hop not in trusted_proxies), peer)
