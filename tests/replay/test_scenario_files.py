"""Scenario files are validated before anything runs: each mistake is named with its file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from referral_service.replay.scenario import SHIPPED_DIR, ScenarioError, load_scenario
from tests.referrals import FIXTURES

SHIPPED = sorted(SHIPPED_DIR.glob("*.toml"))
ADA = FIXTURES / "ada-testpatient-adult-inpatient.json"


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "story.toml"
    path.write_text(body)
    return path


def _scenario(events: str, *, end: str = 'phase = "declined"', head: str = "format = 1") -> str:
    return f"""{head}
name = "story"
title = "A story"

[referral]
file = "{ADA}"

[timeline]
events = [
{events}
]

[end]
{end}
"""


def _error(tmp_path: Path, body: str) -> str:
    with pytest.raises(ScenarioError) as raised:
        load_scenario(_write(tmp_path, body))
    return str(raised.value)


def test_every_shipped_scenario_is_valid_and_covers_the_stories() -> None:
    names = {load_scenario(path).name for path in SHIPPED}
    assert names == {
        "adult-step-down",
        "adolescent-php-iop",
        "sud-drop-out",
        "co-occurring-transfer",
        "decline-capacity",
        "waitlist-accept",
        "referrer-cancel",
        "careplan-read-only",
    }


def test_a_missing_or_unknown_format_version_is_named(tmp_path: Path) -> None:
    message = _error(tmp_path, _scenario('{ day = 0, do = "waitlist" },', head="format = 2"))
    assert "story.toml: format: this replay reads format = 1, got 2" in message


def test_each_bad_field_is_named_with_its_place_in_the_timeline(tmp_path: Path) -> None:
    events = """  { day = 0, do = "decline", reason = "too_busy" },
  { day = -1, do = "waitlist" },
  { day = 3, do = "teleport" },"""
    message = _error(tmp_path, _scenario(events))
    assert "story.toml: invalid scenario" in message
    assert "timeline.events[0].decline.reason: Input should be 'no_capacity'" in message
    assert "timeline.events[1].waitlist.day: Input should be greater than or equal to 0" in message
    assert (
        "timeline.events[2]: Input tag 'teleport' found using 'do' does not match any of the expected tags" in message
    )


def test_unknown_expectation_keys_and_task_only_fields_are_refused(tmp_path: Path) -> None:
    body = _scenario(
        '{ day = 0, do = "waitlist" },', end='care_plan = { status = "active", business_status = "x" }\nteam = 1'
    )
    message = _error(tmp_path, body)
    assert "end.team: Extra inputs are not permitted" in message
    body = _scenario('{ day = 0, do = "waitlist" },', end='care_plan = { status = "active", business_status = "x" }')
    assert "end: Value error, care_plan: business_status and status_reason are Task fields" in _error(tmp_path, body)


def test_a_transfer_needs_its_destination_and_missed_days_must_be_in_the_series(tmp_path: Path) -> None:
    transfer = (
        '{ day = 0, do = "accept", track = "adult-mh" },\n  { day = 5, do = "discharge", reason = "transferred" },'
    )
    assert "to_level is given exactly when the reason is transferred" in _error(tmp_path, _scenario(transfer))
    series = (
        '{ day = 1, do = "sessions", weeks = 1, week_days = [0, 2], kind = "group", minutes = 180, missed_days = [2] },'
    )
    assert "missed_days [2] are not days of this series" in _error(tmp_path, _scenario(series))


def test_checkpoints_after_the_last_day_and_repeated_sessions_are_refused(tmp_path: Path) -> None:
    body = _scenario('{ day = 0, do = "waitlist" },') + '\n[[after]]\nday = 9\nphase = "waitlisted"\n'
    assert "after.day [9] falls after the scenario's last day 0" in _error(tmp_path, body)
    twice = (
        '{ day = 2, do = "attend", kind = "group", minutes = 60 },\n'
        '  { day = 2, do = "miss", kind = "group", minutes = 60 },'
    )
    assert "session ids ['d2-group'] repeat" in _error(tmp_path, _scenario(twice))


def test_toml_syntax_errors_and_missing_referral_files_name_the_file(tmp_path: Path) -> None:
    assert "story.toml: not valid TOML" in _error(tmp_path, "format = 1\nname = \n")
    body = _scenario('{ day = 0, do = "waitlist" },').replace(str(ADA), "nowhere.json")
    assert "story.toml: referral.file: no such file nowhere.json" in _error(tmp_path, body)
