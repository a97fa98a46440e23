"""Rebuilding the read model: real referrals run through a real worker (Temporal dev server, HAPI), the
service database is deleted, and ``rebuild_read_model`` writes the same rows again (their versions aside)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.domain.attendance import SessionRecord
from referral_service.domain.program import Program, SessionKind
from referral_service.ehr.client import FhirClient
from referral_service.read_model import rebuild_read_model
from referral_service.store.database import open_database, sqlite_url
from referral_service.store.referrals import ReferralRows, RowQuery
from referral_service.temporal_client.key_ring_secrets import referral_rows
from referral_service.worker import create_worker
from tests.conftest import HAPI_SOURCE_ID
from tests.polling import eventually
from tests.program_day import program_today
from tests.workflows.stories import start_referral
from workflows.referral import ReferralWorkflow
from workflows.referral_types import RecordSessionInput, ScreeningDecisionInput

pytestmark = pytest.mark.timeout(300)
ADA = "ada-testpatient-adult-inpatient"


async def _rows(rows: ReferralRows, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Each row as stored, its version left out."""
    found = await rows.find(RowQuery(open_only=False, keys=keys))
    return {stored.row.key: stored.row.model_dump(exclude={"version"}) for stored in found}


async def test_a_deleted_database_is_rebuilt_with_the_same_rows(
    temporal_env: WorkflowEnvironment, hapi_client: FhirClient, program: Program, tmp_path: Path
) -> None:
    client = temporal_env.client
    queue = f"rebuild-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "service.sqlite"
    engine = open_database(sqlite_url(path))
    rows = referral_rows(client, engine)
    async with create_worker(client, queue, {HAPI_SOURCE_ID: hapi_client}, program, database=engine):
        keys = [(await start_referral(temporal_env, hapi_client, program, queue, client=client)).id for _ in range(3)]
        screening, accepted, attended = keys
        for key in (accepted, attended):
            handle = client.get_workflow_handle_for(ReferralWorkflow.run, key)
            await handle.execute_update(
                ReferralWorkflow.decide, ScreeningDecisionInput(decision="accept", track_id="adult-mh")
            )
        session = SessionRecord(
            session_id="s1", date=program_today(program=program), kind=SessionKind.GROUP, minutes=180, attended=True
        )
        await client.get_workflow_handle_for(ReferralWorkflow.run, attended).execute_update(
            ReferralWorkflow.record_session, RecordSessionInput(session=session)
        )

        async def written() -> dict[str, dict[str, Any]] | None:
            stored = await _rows(rows, keys)
            asked = {
                key: (await client.get_workflow_handle_for(ReferralWorkflow.run, key).query(ReferralWorkflow.row))
                for key in keys
            }
            current = all(
                key in stored and stored[key] == row.model_dump(exclude={"version"}) for key, row in asked.items()
            )
            return stored if current else None

        before = await eventually(written, "every row written by its workflow")
        engine.dispose()
        path.unlink()
        engine = open_database(sqlite_url(path))
        rows = referral_rows(client, engine)
        assert await _rows(rows, keys) == {}  # a new, empty database

        counts = await rebuild_read_model(client, rows, queue)
        after = await _rows(rows, keys)
        for key in keys:
            await client.get_workflow_handle(key).terminate("test ended")
    engine.dispose()

    assert (counts.written, counts.current, counts.failed) == (3, 0, 0)
    assert after == before
    assert before[screening]["phase"] == "screening"
    assert before[attended]["sessions_attended"] == 1
    assert before[attended]["person"]["family"]  # the sealed patient details came back too
