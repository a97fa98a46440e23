"""``referral-service today`` against the real API, worker, Temporal and HAPI: the local user (no sign-in) sees
everyone's day, as text and as JSON."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from tests.api_driver import Api
from tests.cli.test_cli import Run, api_url, cli  # noqa: F401 (fixtures)
from tests.program_day import PROGRAM, program_today

pytestmark = pytest.mark.timeout(600)


async def test_today_lists_first_sessions_due_and_todays_groups_as_text_and_json(cli):  # noqa: F811
    today = program_today()
    async with httpx.AsyncClient(base_url=cli.url, timeout=60) as http:
        api = Api(http)
        key = await api.submit(today - timedelta(days=2))
        await api.accept(key, "co-occurring")

    def listed(run: Run) -> bool:  # the read model follows the workflow's change
        return run.code == 0 and key in [i["key"] for i in json.loads(run.out)["first_sessions"]]

    as_json = json.loads((await cli.eventually("today", "--json", until=listed, what="the first session")).out)
    assert as_json["member"] is None  # everyone's
    [item] = [i for i in as_json["first_sessions"] if i["key"] == key]
    assert item["due"] == (today + timedelta(days=5)).isoformat()
    meets_today = [t.id for t in PROGRAM.tracks if today.isoweekday() in t.days]
    assert [g["track_id"] for g in as_json["groups"]] == meets_today
    for group in as_json["groups"]:
        assert (key in group["roster"]) == (group["track_id"] == "co-occurring")

    run = await cli("today")
    assert run.code == 0, run
    assert f"My day: {today.isoformat()}, everyone's caseload" in run.out
    first = run.out.split("First sessions due:")[1].split("Follow-up calls due:")[0]
    assert key in first
    assert f"by {(today + timedelta(days=5)).isoformat()}" in first
    assert "Today's groups:" in run.out
