"""``referral-service replay`` end to end: the shipped scenarios against the HAPI test server, through the
command's own code (the session's time-skipping Temporal server stands in for the one it would start)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.devstack.process import free_port
from referral_service.replay.command import EXIT_OK, EXIT_UNMET, EXIT_UNREACHABLE, run_replay
from referral_service.replay.scenario import SHIPPED_DIR
from tests.referrals import FIXTURES, PATIENT_DATA

SCENARIOS = SHIPPED_DIR


async def _replay(
    paths: list[Path], fhir_url: str, env: WorkflowEnvironment | None, report: Path | None = None
) -> tuple[int, str, str]:
    """The replay command as the CLI runs it; returns the exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = await run_replay(paths, fhir_url=fhir_url, report=report, env=env, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


async def test_every_shipped_scenario_meets_its_expectations(
    time_skipping_env: WorkflowEnvironment, hapi_base_url: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "run.json"
    code, out, err = await _replay([SCENARIOS], hapi_base_url, time_skipping_env, report=report)
    logged = capfd.readouterr()

    assert code == EXIT_OK, out
    assert "8 scenarios, 8 passed, 0 failed" in out
    assert "UNMET" not in out
    # Every write is reported with its resource id and version, and progress went to stderr.
    assert "PUT  [base]/CarePlan?identifier=" in out
    assert "adult-step-down: passed" in err
    written = json.loads(report.read_text())
    assert written["passed"] is True
    phases = {s["name"]: s["final_phase"] for s in written["scenarios"]}
    assert phases == {
        "adolescent-php-iop": "closed",
        "adult-step-down": "closed",
        "careplan-read-only": "closed",
        "referrer-cancel": "cancelled",
        "co-occurring-transfer": "transferred",
        "decline-capacity": "declined",
        "sud-drop-out": "closed",
        "waitlist-accept": "in_treatment",
    }
    interactions = [i for s in written["scenarios"] for i in s["interactions"]]
    writes = [i for i in interactions if i["method"] == "PUT"]
    assert writes
    assert all(i["status"] in (200, 201) and i["resource"] and i["version"] for i in writes)
    bundle = json.loads(report.with_name("run.bundle.json").read_text())
    assert bundle["type"] == "transaction"
    types = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert types.count("Encounter") == 35 + 30 + 12 + 9 + 9 + 6 + 6  # every attended session, once
    assert types.count("DocumentReference") == 2  # the read-only-CarePlan EHR's plan and aftercare notes
    assert [entry for entry in bundle["entry"] if "id" in entry["resource"] or "meta" in entry["resource"]] == []
    assert [word for word in PATIENT_DATA if word in out or word in err] == []
    # Nothing about the patients in any log line, nor in the raw bytes Temporal stores for each referral
    # (every event, search attributes included: payloads are encrypted, attributes hold no PHI).
    assert [word for word in PATIENT_DATA if word in logged.out or word in logged.err] == []
    for scenario in written["scenarios"]:
        history = await time_skipping_env.client.get_workflow_handle(scenario["referral_key"]).fetch_history()
        stored = b"".join(event.SerializeToString() for event in history.events)
        assert len(history.events) > 10
        assert [word for word in PATIENT_DATA if word.encode() in stored] == [], scenario["name"]


async def test_an_unmet_expectation_names_what_was_expected_and_found(
    time_skipping_env: WorkflowEnvironment, hapi_base_url: str, tmp_path: Path
) -> None:
    story = (SCENARIOS / "decline-no-capacity.toml").read_text()
    story = story.replace("../tests/fixtures/referrals/", f"{FIXTURES}/")
    story = story.replace("care_team = { count = 0 }", "care_team = { count = 1 }")
    story = story.replace('status = "rejected"', 'status = "accepted"')
    broken = tmp_path / "broken.toml"
    broken.write_text(story)

    code, out, _ = await _replay([broken], hapi_base_url, time_skipping_env)

    assert code == EXIT_UNMET
    assert "UNMET end: task (Task).status: expected accepted, found rejected (Task/" in out
    assert "UNMET end: care_team (CareTeam): expected 1, found 0" in out
    assert "1 scenarios, 0 passed, 1 failed: decline-capacity" in out


async def test_an_unreachable_or_non_fhir_url_fails_at_once_with_a_clear_message(hapi_base_url: str) -> None:
    scenario = SCENARIOS / "decline-no-capacity.toml"
    nobody = f"http://127.0.0.1:{free_port()}/fhir"
    code, out, err = await _replay([scenario], nobody, None)
    assert (code, out) == (EXIT_UNREACHABLE, "")
    assert f"replay: {nobody} is not a usable FHIR server: GET [base]/metadata failed (" in err

    code, _, err = await _replay([scenario], hapi_base_url.removesuffix("/fhir") + "/not-fhir", None)
    assert code == EXIT_UNREACHABLE
    assert "is not a usable FHIR server: GET [base]/metadata failed" in err
