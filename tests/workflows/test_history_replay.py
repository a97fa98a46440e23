"""Recorded referral histories replay against the current workflow code: a change that would break
referrals already running fails here, before it is deployed.

The corpus in ``tests/fixtures/histories`` is recorded from the story tests on the real servers:
``RECORD_HISTORIES=1 ./scripts/test.sh tests/workflows`` (docs/histories.md says when and how).
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from referral_service.domain.discharge import DeclineReason
from referral_service.ehr.client import FhirClient
from referral_service.programs import load_program
from referral_service.worker import create_worker, replay_histories
from tests.conftest import HAPI_SOURCE_ID, TEST_KEY_RING
from tests.workflows.stories import HISTORIES, start_referral
from workflows.referral import ReferralWorkflow
from workflows.referral_types import ScreeningDecisionInput

CORPUS = sorted(HISTORIES.glob("*.json"))


async def test_every_recorded_history_replays_deterministically() -> None:
    results = await replay_histories(CORPUS, TEST_KEY_RING)
    assert len(results) >= 8, "the corpus of recorded histories is missing"
    assert [(r.workflow_id, r.failure) for r in results if r.failure] == []
    assert all(r.events > 10 for r in results)


async def test_a_history_the_code_no_longer_matches_is_reported(tmp_path: Path) -> None:
    """Rename the first activity the history scheduled: replay must name the mismatch, not pass."""
    changed = _renamed_first_activity(tmp_path)
    [result] = await replay_histories([changed], TEST_KEY_RING)
    assert result.failure is not None
    assert "write_care_plan" in result.failure or "nondetermin" in result.failure.lower()

    cli = _replay_cli(tmp_path, HISTORIES, changed)
    assert cli.returncode == 1
    assert "NON-DETERMINISTIC" in cli.stdout
    assert f"{len(CORPUS) + 1} histories" in cli.stdout


async def test_parallel_replay_reports_each_history_in_order(tmp_path: Path) -> None:
    """Spread over processes, replay still names the one broken history, its workflow and the mismatched
    activity, and lists every history in the order given."""
    changed = _renamed_first_activity(tmp_path)
    files = [*CORPUS[:4], changed, *CORPUS[4:]]
    results = await replay_histories(files, TEST_KEY_RING, processes=3)
    assert [r.source for r in results] == [str(f) for f in files]
    assert [r.workflow_id for r in results if r.failure] == [changed.stem]
    assert "write_care_plan" in (results[4].failure or "")
    assert [r.events for r in results] == [len(json.loads(f.read_text())["events"]) for f in files]


def _renamed_first_activity(tmp_path: Path) -> Path:
    """A completed program's history from before writes were tried locally (each one an activity scheduled in
    the history), its first scheduled activity renamed: the code no longer matches."""
    recorded = json.loads((HISTORIES / "adult-completed-before-local-ehr-writes.json").read_text())
    scheduled = next(e for e in recorded["events"] if "activityTaskScheduledEventAttributes" in e)
    scheduled["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "write_care_plan"
    changed = tmp_path / "adult-completed-changed.json"
    changed.write_text(json.dumps(recorded))
    return changed


def _replay_cli(
    tmp_path: Path, *args: Path | str, temporal: str = "127.0.0.1:7233"
) -> subprocess.CompletedProcess[str]:
    """``referral-service replay-history`` as an engineer runs it, with the test key ring configured."""
    config = tmp_path / "service.toml"
    [(key_id, key)] = [(kid, TEST_KEY_RING.keys[kid]) for kid in TEST_KEY_RING.keys]
    config.write_text(
        f'temporal_address = "{temporal}"\n[codec]\nactive = "{key_id}"\n[codec.keys]\n'
        f'"{key_id}" = "{base64.b64encode(key).decode()}"\n'
    )
    command = [str(Path(sys.executable).parent / "referral-service"), "--config", str(config), "replay-history"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, timeout=120, check=False)


def test_replay_history_command_passes_the_corpus(tmp_path: Path) -> None:
    cli = _replay_cli(tmp_path, HISTORIES)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert f"{len(CORPUS)} histories" in cli.stdout


async def test_histories_fetched_from_a_running_server_replay_by_id_and_by_query(
    tmp_path: Path, temporal_env: WorkflowEnvironment, hapi_client: FhirClient
) -> None:
    """An engineer checks the referrals on a live server before deploying: by workflow id and by a visibility
    query; an id the server does not know is a usage error naming it, not a crash."""
    queue = f"replay-live-{uuid.uuid4().hex[:8]}"
    async with create_worker(temporal_env.client, queue, {HAPI_SOURCE_ID: hapi_client}):
        handle = await start_referral(temporal_env, hapi_client, load_program(), queue)
        decline = ScreeningDecisionInput(decision="decline", decline_reason=DeclineReason.NO_CAPACITY)
        await handle.execute_update(ReferralWorkflow.decide, decline)
        await handle.result()
    address = temporal_env.client.service_client.config.target_host
    key = handle.id

    by_id = await asyncio.to_thread(_replay_cli, tmp_path, "--workflow-id", key, temporal=address)
    assert by_id.returncode == 0, by_id.stdout + by_id.stderr
    assert key in by_id.stdout
    assert "1 histories" in by_id.stdout

    query = f"WorkflowType = 'ReferralWorkflow' AND TaskQueue = '{queue}'"
    listed = await _eventually_listed(tmp_path, query, address)
    assert key in listed.stdout
    assert "0 failed" in listed.stdout

    unknown = await asyncio.to_thread(_replay_cli, tmp_path, "--workflow-id", "no-such-referral", temporal=address)
    assert unknown.returncode == 2
    assert "no-such-referral" in unknown.stderr


async def _eventually_listed(tmp_path: Path, query: str, address: str) -> subprocess.CompletedProcess[str]:
    """Visibility lists a closed run a moment after it closes."""
    for _ in range(20):
        run = await asyncio.to_thread(_replay_cli, tmp_path, "--query", query, temporal=address)
        if run.returncode == 0:
            return run
        await asyncio.sleep(0.5)
    raise AssertionError(f"the query never listed the referral: {run.stdout}{run.stderr}")
