"""What every route needs: settings, the Temporal client, the program; as FastAPI dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from temporalio.client import Client

from referral_service.config import Settings
from referral_service.domain.program import Program


@dataclass(frozen=True)
class AppState:
    settings: Settings
    temporal: Client
    program: Program


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.services
    return state


StateDep = Annotated[AppState, Depends(_state)]
