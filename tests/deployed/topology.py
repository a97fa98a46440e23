"""The deployed topology under test: ``referral_service.devstack.deployed`` (what ``scripts/deployed.sh`` starts)
on free ports in a folder of the session, sign-in on through the loopback OpenID provider, and a proxy's choice
of API process for every request (``EitherApi``)."""

from __future__ import annotations

import itertools

import httpx


class EitherApi(httpx.AsyncBaseTransport):
    """What a proxy in front of several API processes does: each request to the next process in turn, and to
    the one after when a process does not take the connection (killed, or restarting)."""

    def __init__(self, bases: list[str]) -> None:
        self._bases = [httpx.URL(base) for base in bases]
        self._turn = itertools.cycle(range(len(bases)))
        self._transport = httpx.AsyncHTTPTransport()
        self.served: list[int] = []  # which process answered each request, by index

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        error: httpx.ConnectError | None = None
        for _ in self._bases:
            index = next(self._turn)
            base = self._bases[index]
            request.url = request.url.copy_with(scheme=base.scheme, host=base.host, port=base.port)
            try:
                response = await self._transport.handle_async_request(request)
            except httpx.ConnectError as refused:
                error = refused
                continue
            self.served.append(index)
            return response
        assert error is not None
        raise error

    async def aclose(self) -> None:
        await self._transport.aclose()
