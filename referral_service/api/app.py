"""The FastAPI application: FHIR intake at ``/fhir``, the case-manager API at ``/api``, the dashboard, health."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.client import Client

from referral_service.api import (
    audit_routes,
    codec_routes,
    dashboard,
    fhir_routes,
    group_routes,
    health_routes,
    measures_routes,
    referral_routes,
    subscription_routes,
    today_routes,
)
from referral_service.api.access import AccessDenied, denied_response, forms_carry_csrf
from referral_service.api.audit_trail import AuditTrail
from referral_service.api.dashboard.forms import Bounce, bounce_response
from referral_service.api.deps import AppState
from referral_service.api.gate import AccessGate
from referral_service.api.intake_metrics import IntakeLatency
from referral_service.api.referral_errors import referral_error_response
from referral_service.api.security_headers import SecurityHeaders
from referral_service.api.signin import routes as signin_routes
from referral_service.api.signin.session import SignIn, renewing_sessions
from referral_service.api.tokens import TokenVerifier
from referral_service.config import Settings
from referral_service.domain.metric_names import AUDIT_WRITE_FAILURES
from referral_service.programs import load_program
from referral_service.referrals.errors import ReferralError
from referral_service.store.audit import AuditStore
from referral_service.store.database import open_database
from referral_service.store.intake_rates import IntakeRates
from referral_service.store.revocations import SessionRevocations
from referral_service.temporal_client.connection import metric_meter
from referral_service.temporal_client.key_ring_secrets import referral_rows
from referral_service.tracing import traced_request

# Every route the app serves; each must have a rule in ``access.POLICY`` or ``access.PUBLIC``.
ROUTERS: tuple[APIRouter, ...] = (
    health_routes.router,
    fhir_routes.router,
    subscription_routes.router,
    referral_routes.router,
    measures_routes.router,
    group_routes.router,
    today_routes.router,
    *dashboard.ROUTERS,
    signin_routes.router,
    codec_routes.router,
    audit_routes.router,
)


def create_app(settings: Settings, client: Client, *, worker_running: Callable[[], bool] | None = None) -> FastAPI:
    """The whole API; ``worker_running`` adds the worker to ``/readyz`` where the process also runs one."""
    app = FastAPI(
        title="IOP referral service",
        description="FHIR R4 intake for IOP step-down referrals, the case-manager API and quality measures.",
        version="0.1.0",
        dependencies=[Depends(forms_carry_csrf)],  # the caller and its rights: ``AccessGate``, before the body
        lifespan=_closing_at_shutdown,
        # Served by the dashboard's routes instead, behind the access rules (FastAPI's own are public).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.database = open_database(settings.database())
    app.state.token_verifier = TokenVerifier(settings.auth) if settings.auth else None
    app.state.sign_in = SignIn.configured(
        settings.auth, app.state.token_verifier, SessionRevocations(app.state.database)
    )
    app.add_exception_handler(AccessDenied, _denied)  # type: ignore[arg-type]
    app.add_exception_handler(ReferralError, referral_error_response)
    app.add_exception_handler(Bounce, bounce_response)
    app.state.services = _services(settings, client, worker_running)
    failures = metric_meter(client).create_counter(*AUDIT_WRITE_FAILURES)
    app.state.audit = AuditStore(app.state.database, on_failure=failures.add)
    app.state.read_model = referral_rows(client, app.state.database)
    app.state.intake_rates = IntakeRates(app.state.database, settings.intake)

    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(AccessGate, routes=[route for router in ROUTERS for route in router.routes], settings=settings)
    ui_origin = str(httpx.URL(settings.temporal_ui_url).copy_with(path="/", query=None)).rstrip("/")
    app.add_middleware(CodecCors, ui_origin=ui_origin)  # outside the gate: a preflight carries no token
    app.middleware("http")(IntakeLatency(metric_meter(client)))
    app.middleware("http")(renewing_sessions)
    app.middleware("http")(
        AuditTrail(app.state.audit, frozenset(settings.trusted_proxies), settings.client_address_header)
    )
    app.add_middleware(SecurityHeaders)
    if settings.otlp_traces_endpoint is not None:
        app.middleware("http")(traced_request)  # added last, so outermost: the span covers the whole request
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")
    return app


def create_worker_health_app(settings: Settings, client: Client, worker_running: Callable[[], bool]) -> FastAPI:
    """What a worker-only process serves, for its orchestrator: ``/healthz`` and ``/readyz``, nothing else."""
    app = FastAPI(title="IOP referral worker", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.services = _services(settings, client, worker_running)
    app.include_router(health_routes.router)
    return app


def _services(settings: Settings, client: Client, worker_running: Callable[[], bool] | None) -> AppState:
    return AppState(
        settings=settings,
        temporal=client,
        program=load_program(settings.program_file),
        worker_running=worker_running,
    )


@contextlib.asynccontextmanager
async def _closing_at_shutdown(app: FastAPI) -> AsyncIterator[None]:
    """At shut-down, the audit records still queued are written before the process ends; EHR clients close."""
    yield
    await asyncio.to_thread(app.state.audit.close)
    app.state.database.dispose()
    for ehr in app.state.services.ehr_clients.values():
        await ehr.aclose()


async def _denied(request: Request, denied: AccessDenied) -> Response:
    return denied_response(request, denied)


class CodecCors:
    """Only the Temporal UI may call the codec server from a browser, with the user's token; no other route
    answers a cross-origin script (a dashboard page and its CSRF token stay unreadable to any other site)."""

    def __init__(self, app: ASGIApp, *, ui_origin: str) -> None:
        self._app = app
        self._codec = CORSMiddleware(
            app,
            allow_origins=[ui_origin],
            allow_methods=["POST"],
            allow_headers=["Authorization", "Content-Type", "X-Namespace"],
            allow_credentials=True,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        codec = scope["type"] == "http" and scope["path"].startswith(f"{codec_routes.router.prefix}/")
        await (self._codec if codec else self._app)(scope, receive, send)
