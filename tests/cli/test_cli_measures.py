"""``referral-service measures`` against the real API, worker, Temporal and HAPI: the quality table.

The referrals leave hospital in a random stretch of the past of their own, so no other test's referral falls
in the period asked for.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

import httpx
import pytest

from referral_service.devstack.process import free_port
from tests.api_driver import Api
from tests.cli.test_cli import Run, api_url, cli, column_starts  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(600)


async def test_measures_prints_aligned_tables_with_denominators_and_json(cli):  # noqa: F811
    start = date(2003, 1, 6) + timedelta(days=random.randrange(6000))  # noqa: S311 - a test period, not a secret
    async with httpx.AsyncClient(base_url=cli.url, timeout=60) as http:
        api = Api(http)
        day_2, discharge_day_only, sud_never = [await api.submit(start) for _ in range(3)]
        for key, track in ((day_2, "adult-mh"), (discharge_day_only, "adult-mh"), (sud_never, "sud")):
            await api.accept(key, track)
        await api.attend(day_2, start + timedelta(days=2), session_id="s1")
        await api.attend(discharge_day_only, start, session_id="s1")  # the discharge day: no follow-up
    period = ["--from", start.isoformat(), "--to", (start + timedelta(days=6)).isoformat()]

    def all_three_accepted(run: Run) -> bool:  # the API lists referrals from the lagging visibility store
        return run.code == 0 and json.loads(run.out)["overall"]["referrals"] == 3

    as_json = await cli.eventually("measures", *period, "--json", until=all_three_accepted, what="3 accepted")
    run = await cli("measures", *period)

    assert run.code == 0, run
    lines = run.out.splitlines()
    header = next(line for line in lines if line.startswith("TRACK"))
    names = ["TRACK", "ACCEPTED", "FOLLOW-UP 7D", "FOLLOW-UP 30D", "MEDIAN DAYS", "WEEKS AT MIN", "COMPLETED"]
    starts = column_starts(header, names)
    track_table = lines[lines.index(header) + 1 : lines.index("", lines.index(header))]
    rows = {line.split()[0]: line for line in track_table}
    adult = rows["adult-mh"]
    assert adult[starts[1] :].startswith("2 ")
    assert adult[starts[2] :].startswith("50% (1/2)")
    assert adult[starts[3] :].startswith("50% (1/2)")
    assert adult[starts[4] :].startswith("1 (n=2)")  # days 2 and 0
    assert rows["sud"][starts[2] :].startswith("0% (0/1)")  # attended nothing: a miss, not "no data"
    assert rows["adolescent"][starts[2] :].startswith("no data (0/0)")
    assert rows["all"][starts[2] :].startswith("33% (1/3)")
    assert any(line.startswith("SOURCE") for line in lines)

    report = json.loads(as_json.out)
    tracks = {group["group"]: group for group in report["by_track"]}
    assert tracks["adult-mh"]["follow_up_7_days"] == {"numerator": 1, "denominator": 2, "pending": 0, "rate": 0.5}
    assert tracks["adolescent"]["follow_up_30_days"]["rate"] is None
    assert report["period_from"] == start.isoformat()


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--from", "2026-03-10", "--to", "2026-03-01"], "--from must not be after --to"),
        (["--from", "March"], "not a date"),
    ],
)
async def test_a_bad_period_is_a_usage_error(cli, args, complaint):  # noqa: F811
    run = await cli("measures", *args)
    assert run.code == 2, run
    assert complaint in run.err
    assert run.out == ""


async def test_measures_without_an_api_exits_3(cli):  # noqa: F811
    nothing_there = f"http://127.0.0.1:{free_port()}"
    run = await cli("measures", api_url=nothing_there)
    assert run.code == 3, run
    assert f"cannot reach the API at {nothing_there}" in run.err
