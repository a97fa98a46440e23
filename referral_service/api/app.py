"""The FastAPI application: FHIR intake at ``/fhir``, the case-manager API at ``/api``, the dashboard, health."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from referral_service.api import (
    codec_routes,
    dashboard,
    fhir_routes,
    group_routes,
    health_routes,
    measures_routes,
    referral_routes,
    subscription_routes,
)
from referral_service.api.access import AccessDenied, authorize, denied_response
from referral_service.api.deps import AppState
from referral_service.api.intake_limits import SourceRateLimiter
from referral_service.api.tokens import TokenVerifier
from referral_service.config import Settings
from referral_service.programs import load_program

# Every route the app serves; each must have a rule in ``access.POLICY`` or ``access.PUBLIC``.
ROUTERS: tuple[APIRouter, ...] = (
    health_routes.router,
    fhir_routes.router,
    subscription_routes.router,
    referral_routes.router,
    measures_routes.router,
    group_routes.router,
    dashboard.router,
    codec_routes.router,
)


def create_app(settings: Settings, client: Client) -> FastAPI:
    app = FastAPI(
        title="IOP referral service",
        description="FHIR R4 intake for IOP step-down referrals, the case-manager API and quality measures.",
        version="0.1.0",
        dependencies=[Depends(authorize)],
    )
    app.state.token_verifier = TokenVerifier(settings.auth) if settings.auth else None
    app.add_exception_handler(AccessDenied, _denied)  # type: ignore[arg-type]
    app.state.services = AppState(
        settings=settings,
        temporal=client,
        program=load_program(settings.program_file),
        intake_limiter=SourceRateLimiter(settings.intake),
    )

    for router in ROUTERS:
        app.include_router(router)
    # Only the Temporal UI may call the codec server from a browser, with the user's token.
    ui_origin = str(httpx.URL(settings.temporal_ui_url).copy_with(path="/", query=None)).rstrip("/")
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[ui_origin],
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
        allow_credentials=True,
    )
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")
    return app


async def _denied(request: Request, denied: AccessDenied) -> Response:
    return denied_response(request, denied)
