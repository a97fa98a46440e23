"""What every route needs: settings, the Temporal client, the program; as FastAPI dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

from fastapi import Depends, Request
from temporalio.client import Client

from referral_service.api.intake_limits import SourceRateLimiter
from referral_service.codec import EncryptionCodec
from referral_service.config import Settings
from referral_service.domain import patient_match
from referral_service.domain.program import Program


@dataclass(frozen=True)
class AppState:
    settings: Settings
    temporal: Client
    program: Program
    intake_limiter: SourceRateLimiter

    @cached_property
    def patient_match_secret(self) -> bytes:
        """Derived from the active key of the key ring the client encrypts payloads with: in a deployment
        that is ``settings.key_ring()`` (see ``temporal_client.connect``); a client handed in (the tests)
        brings its own ring, and no dev key file is made for it."""
        codec = self.temporal.data_converter.payload_codec
        ring = codec.key_ring if isinstance(codec, EncryptionCodec) else self.settings.key_ring()
        return patient_match.match_secret(ring.active_key)


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.services
    return state


StateDep = Annotated[AppState, Depends(_state)]
