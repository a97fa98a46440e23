"""What every route needs: settings, the Temporal client, the program; as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

from fastapi import Depends, Request
from temporalio.client import Client

from referral_service.api import page_tokens
from referral_service.config import Settings
from referral_service.domain.program import Program
from referral_service.ehr.client import FhirClient
from referral_service.intake.starts import ReferralStarts
from referral_service.intake.take_in import Intake
from referral_service.store.audit import AuditStore
from referral_service.store.ehr_rates import share_rates
from referral_service.store.intake_rates import IntakeRates
from referral_service.store.referrals import ReferralRows
from referral_service.temporal_client.key_ring_secrets import active_codec_key, patient_match_secret


@dataclass(frozen=True)
class AppState:
    settings: Settings
    temporal: Client
    program: Program
    # Whether this process's Temporal worker is polling; None where the process runs no worker.
    worker_running: Callable[[], bool] | None = None

    @cached_property
    def patient_match_secret(self) -> bytes:
        """The same secret the worker's polling intake uses (see ``temporal_client.key_ring_secrets``)."""
        return patient_match_secret(self.temporal, self.settings.key_ring)

    @cached_property
    def intake(self) -> Intake:
        """Every intake route's one path (``referral_service.intake``)."""
        starts = ReferralStarts(self.temporal, self.settings.task_queue, self.program, self.patient_match_secret)
        return Intake(starts)

    @cached_property
    def ehr_clients(self) -> dict[str, FhirClient]:
        """One pooled client per referring EHR, for intake's reads (closed when the API stops)."""
        share_rates(self.settings.database(), [source.throttle for source in self.settings.sources])
        return {source.id: FhirClient(source.connection()) for source in self.settings.sources}

    @property
    def source_ids(self) -> list[str]:
        return [source.id for source in self.settings.sources]

    @cached_property
    def page_token_secret(self) -> bytes:
        """Signs the referral list's page tokens, the same in every API process."""
        return page_tokens.secret(active_codec_key(self.temporal, self.settings.key_ring))


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.services
    return state


StateDep = Annotated[AppState, Depends(_state)]


def _audit(request: Request) -> AuditStore:
    """The API's audit trail (not part of ``AppState``: a worker-only process keeps none)."""
    store: AuditStore = request.app.state.audit
    return store


AuditDep = Annotated[AuditStore, Depends(_audit)]


def _read_model(request: Request) -> ReferralRows:
    """The referral read model (``referral_service.store.referrals``), kept current by the workflows."""
    rows: ReferralRows = request.app.state.read_model
    return rows


ReadModelDep = Annotated[ReferralRows, Depends(_read_model)]


def _intake_rates(request: Request) -> IntakeRates:
    """The per-source intake rate limit, in the service database every API process shares."""
    rates: IntakeRates = request.app.state.intake_rates
    return rates


IntakeRatesDep = Annotated[IntakeRates, Depends(_intake_rates)]
