"""Health for orchestrators: ``/healthz`` says the process answers; ``/readyz`` says it can do its job
(Temporal reachable, every configured referring EHR answering ``GET [base]/metadata``, and in a process
that runs the worker, the worker polling its task queue)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from temporalio.service import RPCError

from referral_service.api.deps import AppState, StateDep
from referral_service.config.sources import SourceSettings
from referral_service.ehr.client import FhirClient
from referral_service.ehr.errors import AuthError, FhirError

router = APIRouter(tags=["health"])
_PROBE_SECONDS = 3.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is unreachable; `checks` says which"}})
async def readyz(services: StateDep) -> JSONResponse:
    """Ready when Temporal and every configured EHR answer within a few seconds (and the worker, where this
    process runs one, is polling); each check is named."""
    results = await asyncio.gather(_temporal(services), *(_ehr(source) for source in services.settings.sources))
    checks = dict(results)
    if services.worker_running is not None:
        checks["worker"] = "ok" if services.worker_running() else "not running"
    ready = all(result == "ok" for result in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


async def _temporal(services: AppState) -> tuple[str, str]:
    try:
        serving = await services.temporal.service_client.check_health(timeout=timedelta(seconds=_PROBE_SECONDS))
    except RPCError as error:
        return "temporal", f"unreachable ({error.status.name})"
    return "temporal", "ok" if serving else "not serving"


async def _ehr(source: SourceSettings) -> tuple[str, str]:
    """``ok``, ``credentials refused`` (the token endpoint or the EHR refused our credentials: writes wait, retrying,
    until someone fixes them) or ``unreachable``, with the PHI-free error."""
    name = f"ehr:{source.id}"
    try:
        async with FhirClient(source.connection(timeout_seconds=_PROBE_SECONDS, throttled=False)) as client:
            await client.capabilities()
    except FhirError as error:
        refused = isinstance(error, AuthError) or (error.status == 403 and source.auth is not None)
        return name, f"{'credentials refused' if refused else 'unreachable'} ({error})"
    return name, "ok"
