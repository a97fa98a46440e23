"""The FastAPI application: FHIR intake at ``/fhir``, the case-manager API at ``/api``, the dashboard, health."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from referral_service.api import dashboard, fhir_routes, health_routes, referral_routes
from referral_service.api.deps import AppState
from referral_service.api.intake_limits import SourceRateLimiter
from referral_service.config import Settings
from referral_service.programs import load_program


def create_app(settings: Settings, client: Client) -> FastAPI:
    app = FastAPI(
        title="IOP referral service",
        description="FHIR R4 intake for IOP step-down referrals and the case-manager API.",
        version="0.1.0",
    )
    app.state.services = AppState(
        settings=settings,
        temporal=client,
        program=load_program(settings.program_file),
        intake_limiter=SourceRateLimiter(settings.intake),
    )

    app.include_router(health_routes.router)
    app.include_router(fhir_routes.router)
    app.include_router(referral_routes.router)
    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")
    return app
