"""Keeps the embedded stack's child servers up: a child that exits, or fails its health probe ``failures`` times in
a row, is stopped and started again after a back-off that doubles with each restart (reset once it stays healthy),
with a log line naming the server and why. Its state (HAPI's and Temporal's database files) survives the restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from referral_service.devstack.process import ManagedProcess, ServerStartError
from referral_service.logging import get_logger

log = get_logger()


@dataclass(frozen=True)
class SupervisionPolicy:
    probe_every_s: float = 10.0
    # A HAPI busy with a burst answers its probe slowly: a minute of silence, not one slow answer, means it is stuck.
    failures: int = 6
    first_backoff_s: float = 2.0
    max_backoff_s: float = 120.0
    stop_grace_s: float = 10.0


@dataclass
class Child:
    """One supervised server: how to start it again, how to tell it is healthy, and the process running now."""

    name: str
    spawn: Callable[[], ManagedProcess]
    probe: Callable[[], bool]
    startup_timeout_s: float
    process: ManagedProcess
    restarts: int = 0


class Supervisor:
    def __init__(self, children: list[Child], policy: SupervisionPolicy) -> None:
        self.children = children
        self._policy = policy

    def child(self, name: str) -> Child:
        return next(child for child in self.children if child.name == name)

    async def run(self) -> None:
        """Watch every child until cancelled."""
        await asyncio.gather(*(self._watch(child) for child in self.children))

    async def _watch(self, child: Child) -> None:
        policy = self._policy
        failures = healthy = 0
        backoff_s = policy.first_backoff_s
        while True:
            await asyncio.sleep(policy.probe_every_s)
            if not child.process.running:
                reason = f"exited with code {child.process.process.returncode}"
            elif await asyncio.to_thread(child.probe):
                failures, healthy = 0, healthy + 1
                if healthy >= policy.failures:
                    backoff_s = policy.first_backoff_s
                continue
            else:
                failures, healthy = failures + 1, 0
                if failures < policy.failures:
                    continue
                reason = f"health probe failed {failures} times in a row"
            child.restarts += 1
            log.warning("restarting a dev server", service=child.name, reason=reason, backoff_s=backoff_s)
            await self._restart(child, backoff_s)
            failures = healthy = 0
            backoff_s = min(backoff_s * 2, policy.max_backoff_s)

    async def _restart(self, child: Child, backoff_s: float) -> None:
        await asyncio.to_thread(child.process.stop, self._policy.stop_grace_s)
        await asyncio.sleep(backoff_s)
        child.process = child.spawn()
        try:
            await child.process.until_ready(child.probe, child.startup_timeout_s)
        except ServerStartError as error:  # the next round sees it down and tries again, after a longer wait
            log.error("a dev server did not come back", service=child.name, reason=str(error))
            return
        log.info("dev server restarted", service=child.name, count=child.restarts)
