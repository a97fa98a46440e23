"""The referrer's Task as an answer (the intake's 201 and 200, ``GET /fhir/Task``): built from the referral's
state by the same function the workflow writes it with (``domain.referrer_task``), so what a referrer reads
is what its EHR was sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_mappings import task
from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import Program
from referral_service.domain.referral import Referral
from referral_service.domain.referrer_task import referrer_task
from referral_service.domain.write_keys import Written, write_key
from workflows.referral_types import ReferralState


def task_of(state: ReferralState) -> dict[str, Any]:
    """The referrer's Task as the referral's state makes it (what the workflow last sent the EHR)."""
    told = state.referrer_task()
    return task.referral_task(
        state.referral,
        key=write_key(state.key, Written.TASK),
        owner=state.program.organization,
        status=told.status,
        business_status=told.business_status,
        status_reason=told.reason,
        task_id=state.key,
        authored_on=state.received_at,
        last_modified=state.timeline[-1].at if state.timeline else state.received_at,
        outputs=[write.ref() for write in state.task_outputs()],
    )


def task_of_phase(
    referral: Referral, *, key: str, program: Program, phase: Phase, received_at: datetime, changed_at: datetime
) -> dict[str, Any]:
    """The Task from the phase alone (the visibility store's), when no worker can answer for the state."""
    told = referrer_task(phase)
    return task.referral_task(
        referral,
        key=write_key(key, Written.TASK),
        owner=program.organization,
        status=told.status,
        business_status=told.business_status,
        status_reason=told.reason,
        task_id=key,
        authored_on=received_at,
        last_modified=changed_at,
    )
