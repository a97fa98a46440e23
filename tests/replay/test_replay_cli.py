"""``referral-service replay`` as a user types it: a bad scenario file or a dead FHIR URL stops it before
any server starts, with the exit code the help text names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from referral_service.devstack.process import free_port
from tests.replay.test_scenario_files import SHIPPED

CLI = Path(sys.executable).with_name("referral-service")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), "replay", *args], capture_output=True, text=True, timeout=120, check=False)


def test_an_invalid_scenario_file_exits_2_naming_the_file_and_field(tmp_path: Path) -> None:
    story = tmp_path / "story.toml"
    story.write_text(SHIPPED[0].read_text().replace('reason = "completed"', 'reason = "finished"'))
    done = _cli(str(story))
    assert done.returncode == 2
    assert f"replay: {story}: invalid scenario" in done.stderr
    assert "timeline.events[3].discharge.reason: Input should be 'completed'" in done.stderr


def test_an_unreachable_fhir_url_exits_3_with_the_metadata_check_named() -> None:
    nobody = f"http://127.0.0.1:{free_port()}/fhir"
    done = _cli(str(SHIPPED[0]), "--fhir-url", nobody)
    assert done.returncode == 3
    assert f"replay: {nobody} is not a usable FHIR server: GET [base]/metadata failed" in done.stderr
    assert done.stdout == ""
