"""The client commands, run as users run them: the installed ``referral-service`` against a real API over HTTP.

The API (uvicorn, on a free port) and a worker run in this test process against the real Temporal dev server
and the real HAPI FHIR server; the CLI is a subprocess. Every test has its own referral (fresh identifiers),
and no CLI output may carry the patient's name, birth date or MRN.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.devstack.process import free_port
from referral_service.domain.referral import Identifier, referral_key
from referral_service.ehr.client import FhirClient
from tests.api_server import running_api
from tests.auth_tokens import auth_settings, token
from tests.conftest import HAPI_SOURCE_ID
from tests.hapi_refusals import refusing
from tests.program_day import program_today
from tests.referrals import referral_bundle

ADA = "ada-testpatient-adult-inpatient"
CLI = Path(sys.executable).with_name("referral-service")
CLI_TIMEOUT_S = 60.0

pytestmark = pytest.mark.timeout(600)


# ---- the API under test ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def api_url(temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient) -> AsyncIterator[str]:
    """The real API on a free loopback port, and a worker on its task queue, for this module's tests."""
    async with running_api(temporal_env, hapi_base_url, hapi_client, queue_prefix="cli") as url:
        yield url


# ---- running the CLI ---------------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float
    command: str = ""

    @property
    def text(self) -> str:
        return self.out + self.err


class Terminal:
    """Runs ``referral-service`` as a subprocess (without blocking the event loop the API runs on)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.runs: list[Run] = []

    async def __call__(self, *args: str, api_url: str | None = None, env_vars: dict[str, str] | None = None) -> Run:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IOP_")} | (env_vars or {})
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            str(CLI),
            *args,
            "--api-url",
            api_url or self.url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT_S)
        assert process.returncode is not None
        run = Run(process.returncode, out.decode(), err.decode(), time.monotonic() - started, args[0] if args else "")
        self.runs.append(run)
        return run

    async def eventually(self, *args: str, until: Any, what: str, patience_s: float = 60.0) -> Run:
        """Run until ``until(run)`` holds (visibility is eventually consistent)."""
        deadline = time.monotonic() + patience_s
        while not until(run := await self(*args)):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {patience_s:.0f}s waiting for {what}; last: {run}")
            await asyncio.sleep(0.5)
        return run


@pytest.fixture
def cli(api_url: str) -> Terminal:
    return Terminal(api_url)


@dataclass
class Referral:
    bundle: dict[str, Any]
    file: Path
    key: str

    @property
    def phi(self) -> list[str]:
        """What identifies the patient: names, MRN, birth date."""
        [patient] = [e["resource"] for e in self.bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
        name = patient["name"][0]
        return [name["family"], *name["given"], patient["identifier"][0]["value"], patient["birthDate"]]

    @property
    def hospital_discharge(self) -> date:
        [stay] = [e["resource"] for e in self.bundle["entry"] if e["resource"]["resourceType"] == "Encounter"]
        return date.fromisoformat(stay["period"]["end"][:10])


@pytest.fixture
def referral(tmp_path: Path) -> Referral:
    """Ada's referral Bundle with fresh identifiers, written to a file, and the id the service will give it."""
    bundle = referral_bundle(ADA)
    [service_request] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
    placer = service_request["identifier"][0]
    file = tmp_path / "referral.json"
    file.write_text(json.dumps(bundle))
    key = referral_key(HAPI_SOURCE_ID, Identifier(system=placer["system"], value=placer["value"]))
    return Referral(bundle, file, key)


def assert_no_phi(cli: Terminal, referral: Referral) -> None:
    """No run but ``list`` printed the patient (``list`` shows them through the caller's role view)."""
    for run in (run for run in cli.runs if run.command != "list"):
        for value in referral.phi:
            assert not re.search(rf"\b{re.escape(value)}\b", run.text), f"patient data {value!r} printed: {run}"


def column_starts(header: str, names: list[str]) -> list[int]:
    return [header.index(name) for name in names]


# ---- submit ------------------------------------------------------------------------------------------


async def test_submit_prints_the_task_and_a_resend_is_already_received(cli, referral):
    """A new referral prints its Task; the same file again says it was already received, with the same id."""
    first = await cli("submit", str(referral.file))

    assert first.code == 0, first
    assert "submitted" in first.out
    assert re.search(rf"Task\s+{re.escape(referral.key)}$", first.out, re.M), first.out
    assert re.search(r"status\s+received$", first.out, re.M)
    assert re.search(r"businessStatus\s+created$", first.out, re.M)
    assert f"{cli.url}/fhir/Task/{referral.key}" in first.out

    again = await cli("submit", str(referral.file))

    assert again.code == 0, again
    assert "already received" in again.out
    assert re.search(rf"Task\s+{re.escape(referral.key)}$", again.out, re.M), again.out

    as_json = await cli("submit", str(referral.file), "--json")
    assert as_json.code == 0, as_json
    assert json.loads(as_json.out)["id"] == referral.key
    assert json.loads(as_json.out)["alreadyReceived"] is True
    assert_no_phi(cli, referral)


async def test_a_refused_referral_prints_each_issue_and_exits_1(cli, referral):
    """The server's OperationOutcome reaches the terminal as `severity code expression: diagnostics`."""
    [service_request] = [
        e["resource"] for e in referral.bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"
    ]
    del service_request["subject"]
    referral.file.write_text(json.dumps(referral.bundle))

    run = await cli("submit", str(referral.file))

    assert run.code == 1, run
    assert re.search(r"^\s*error \S+ ServiceRequest\.subject: \S", run.err, re.M), run.err
    assert_no_phi(cli, referral)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [("{ not json", "not valid JSON"), ('{"resourceType": "Patient"}', "ServiceRequest or Bundle"), ("[]", "Bundle")],
)
async def test_a_file_that_is_not_a_referral_is_a_usage_error(cli, tmp_path, content, complaint):
    file = tmp_path / "not-a-referral.json"
    file.write_text(content)

    run = await cli("submit", str(file))

    assert run.code == 2, run
    assert complaint in run.err
    assert run.out == ""


async def test_a_missing_file_is_a_usage_error(cli, tmp_path):
    run = await cli("submit", str(tmp_path / "nowhere.json"))
    assert run.code == 2, run
    assert "cannot read" in run.err


# ---- list and show -----------------------------------------------------------------------------------


async def test_list_shows_the_referral_as_json_and_as_an_aligned_table(cli, referral):
    """Once visible, the referral is in `list --json` and in the table, whose rows line up with the header."""
    assert (await cli("submit", str(referral.file))).code == 0

    listed = await cli.eventually(
        "list", "--source", HAPI_SOURCE_ID, "--json",
        until=lambda run: run.code == 0 and referral.key in [row["key"] for row in json.loads(run.out)],
        what=f"{referral.key} in list --json",
    )  # fmt: skip
    [row] = [row for row in json.loads(listed.out) if row["key"] == referral.key]
    assert row["source"] == HAPI_SOURCE_ID

    table = await cli("list")

    assert table.code == 0, table
    header, *rows = table.out.splitlines()
    names = ["ID", "PATIENT", "REFERRER", "PHASE", "TRACK", "AT-RISK", "NEXT DEADLINE"]
    starts = column_starts(header, names)
    assert starts == sorted(starts)
    assert starts[0] == 0
    [ours] = [line for line in rows if line.startswith(referral.key + " ")]
    for line in rows:
        for start in starts[1:]:
            assert line[start - 2 : start] == "  ", f"row {line!r} does not line up with {header!r}"
            assert line[start] != " ", f"row {line!r} does not line up with {header!r}"
    cells = [ours[start:end].strip() for start, end in zip(starts, [*starts[1:], None], strict=True)]
    assert cells[0] == referral.key
    assert cells[1].startswith("Ada Testpatient, ")  # the unauthenticated test API's caller sees every part
    assert cells[2] == "Dr. Harper Hospitalist"  # the requester Practitioner the Bundle carries, by name
    assert cells[5] in ("yes", "no")
    assert_no_phi(cli, referral)


async def test_list_filters_by_phase(cli, referral):
    assert (await cli("submit", str(referral.file))).code == 0

    await cli.eventually(
        "list", "--phase", "screening", "--json",
        until=lambda run: run.code == 0 and referral.key in [row["key"] for row in json.loads(run.out)],
        what=f"{referral.key} listed in phase screening",
    )  # fmt: skip
    closed = await cli("list", "--phase", "closed", "--json")
    assert closed.code == 0
    assert referral.key not in [row["key"] for row in json.loads(closed.out)]
    bad = await cli("list", "--phase", "nonsense")
    assert bad.code == 2


async def test_list_pages_with_the_token_it_prints(cli, referral):
    """With a small --limit the list says how to ask for the next page; that page holds other referrals."""
    assert (await cli("submit", str(referral.file))).code == 0
    first = await cli.eventually(
        "list", "--limit", "1", "--json",
        until=lambda run: run.code == 0 and "--page-token" in run.err,
        what="a second page of referrals",
    )  # fmt: skip
    [token] = re.findall(r"--page-token (\S+)", first.err)
    second = await cli("list", "--limit", "1", "--json", "--page-token", token)
    assert second.code == 0, second
    assert [r["key"] for r in json.loads(second.out)] != [r["key"] for r in json.loads(first.out)]
    stale = await cli("list", "--limit", "1", "--overdue", "--page-token", token)  # other filters
    assert stale.code == 1, stale
    assert "page_token is not one this list gave" in stale.err


async def test_show_prints_the_phase_without_patient_details(cli, referral):
    assert (await cli("submit", str(referral.file))).code == 0

    shown = await cli.eventually(
        "show", referral.key,
        until=lambda run: run.code == 0 and re.search(r"phase\s+screening", run.out),
        what="the referral in screening",
    )  # fmt: skip

    assert shown.out.startswith(f"Referral {referral.key}")
    assert re.search(r"source\s+hapi-test$", shown.out, re.M)
    assert "Timeline:" in shown.out
    assert "referral received" in shown.out
    as_json = await cli("show", referral.key, "--json")
    assert as_json.code == 0
    view = json.loads(as_json.out)
    assert (view["key"], view["phase"]) == (referral.key, "screening")
    assert "referral" not in view
    assert '"patient"' not in as_json.out
    assert_no_phi(cli, referral)


async def test_show_of_an_unknown_referral_exits_1(cli):
    run = await cli("show", "hapi-test.no-such-referral.0000000000")
    assert run.code == 1, run
    assert "no referral with id hapi-test.no-such-referral.0000000000" in run.err


# ---- writes the EHR refused ----------------------------------------------------------------------------


async def test_refused_writes_are_listed_shown_and_retried(cli, referral, hapi_base_url):
    """HAPI refuses the referrer's Task: `list --refused-writes` finds the referral, `show` says what the EHR
    answered, `retry-writes` exits 1 while the EHR still refuses and 0 once it takes the Task."""
    help_text = await cli("retry-writes", "--help")
    assert help_text.code == 0
    assert "Exit 0 when it took everything, 1 when some writes are still refused" in " ".join(help_text.out.split())
    async with refusing(hapi_base_url, {"Task": 422}):
        assert (await cli("submit", str(referral.file))).code == 0
        listed = await cli.eventually(
            "list", "--refused-writes", "--json",
            until=lambda run: run.code == 0 and referral.key in [row["key"] for row in json.loads(run.out)],
            what=f"{referral.key} in list --refused-writes",
        )  # fmt: skip
        [row] = [row for row in json.loads(listed.out) if row["key"] == referral.key]
        assert row["refused_writes"] == 1

        shown = await cli("show", referral.key)
        assert shown.code == 0, shown
        assert "Refused by the EHR" in shown.out
        assert re.search(r"Task HTTP 422 \(error processing at Task\)", shown.out), shown.out
        view = json.loads((await cli("show", referral.key, "--json")).out)
        [refused] = view["refused_writes"]
        assert (refused["resource_type"], refused["status"], refused["codes"]) == ("Task", 422, ["processing"])

        still = await cli("retry-writes", referral.key)
        assert still.code == 1, still
        assert "still refused: Task HTTP 422" in still.out

    retried = await cli("retry-writes", referral.key, "--json")
    assert retried.code == 0, retried
    result = json.loads(retried.out)
    assert ([w["resource_type"] for w in result["succeeded"]], result["still_refused"]) == (["Task"], [])
    nothing = await cli("retry-writes", referral.key)
    assert nothing.code == 1
    assert "nothing to retry" in nothing.err
    assert_no_phi(cli, referral)


# ---- attend and discharge ----------------------------------------------------------------------------


async def test_attend_before_acceptance_is_refused_with_the_servers_reason(cli, referral):
    assert (await cli("submit", str(referral.file))).code == 0
    day = (referral.hospital_discharge + timedelta(days=1)).isoformat()

    run = await cli("attend", referral.key, "--session-id", "s1", "--date", day, "--kind", "group", "--minutes", "180")

    assert run.code == 1, run
    assert "sessions can only be recorded in treatment" in run.err
    assert_no_phi(cli, referral)


async def test_a_session_dated_after_today_exits_1_naming_the_rule(cli, referral):
    """A clinical date rule's refusal (422) prints the rule's name and what today is, and exits 1."""
    assert (await cli("submit", str(referral.file))).code == 0
    async with httpx.AsyncClient(base_url=cli.url, timeout=60) as api:
        accepted = await api.post(
            f"/api/referrals/{referral.key}/decision", json={"decision": "accept", "track_id": "adult-mh"}
        )
    assert accepted.status_code == 200, accepted.text
    ahead = (program_today() + timedelta(days=3)).isoformat()

    run = await cli(
        "attend", referral.key, "--session-id", "s1", "--date", ahead, "--kind", "group", "--minutes", "180"
    )

    assert run.code == 1, run
    assert f"the server refused POST /api/referrals/{referral.key}/sessions (422)" in run.err
    assert (
        f"session-in-future: an attended session cannot be dated after today ({program_today().isoformat()},"
        f" America/New_York): {ahead} has not come yet"
    ) in run.err
    shown = await cli("show", referral.key, "--json")
    assert json.loads(shown.out)["sessions"] == []
    assert_no_phi(cli, referral)


async def test_attend_and_discharge_an_accepted_referral(cli, referral):
    """Accepted (through the API), the referral takes sessions and a discharge from the CLI, and shows them."""
    assert (await cli("submit", str(referral.file))).code == 0
    async with httpx.AsyncClient(base_url=cli.url, timeout=60) as api:
        accepted = await api.post(
            f"/api/referrals/{referral.key}/decision", json={"decision": "accept", "track_id": "adult-mh"}
        )
    assert accepted.status_code == 200, accepted.text
    first = referral.hospital_discharge + timedelta(days=1)

    attended = await cli(
        "attend", referral.key, "--session-id", "s1", "--date", first.isoformat(), "--kind", "group", "--minutes", "180"
    )
    missed = await cli(
        "attend", referral.key, "--session-id", "s2", "--date", (first + timedelta(days=1)).isoformat(),
        "--kind", "group", "--minutes", "180", "--absent",
    )  # fmt: skip

    assert attended.code == 0, attended
    assert "recorded session s1 (attended" in attended.out
    assert "phase in_treatment" in attended.out
    assert missed.code == 0, missed
    assert "recorded session s2 (missed" in missed.out
    shown = await cli("show", referral.key)
    assert shown.code == 0, shown
    assert re.search(r"phase\s+in_treatment", shown.out)
    assert re.search(r"track\s+adult-mh$", shown.out, re.M)
    assert re.search(r"^\s+case_manager\s+\S", shown.out, re.M)
    assert re.search(r"^\s+Encounter\s+\S+\s+version \S+", shown.out, re.M), shown.out
    assert re.search(r"^\s+CarePlan\s+\S+\s+version \S+", shown.out, re.M)

    ahead = (program_today() + timedelta(days=10)).isoformat()
    early = await cli("discharge", referral.key, "--reason", "completed", "--date", ahead)
    assert early.code == 1, early
    assert f"discharge-in-future: a discharge cannot be dated after today ({program_today().isoformat()}," in early.err
    today = program_today().isoformat()
    discharged = await cli("discharge", referral.key, "--reason", "completed", "--date", today, "--json")

    assert discharged.code == 0, discharged
    view = json.loads(discharged.out)
    assert view["phase"] in ("discharged", "aftercare")
    assert view["discharge"]["reason"] == "completed"
    again = await cli("discharge", referral.key, "--reason", "completed")
    assert again.code == 1, again
    assert_no_phi(cli, referral)


# ---- team --------------------------------------------------------------------------------------------


async def test_team_reassigns_a_role_and_prints_the_servers_refusal(cli, referral):
    """Accepted (through the API), the referral's primary therapist changes from the CLI; a member of another
    track is refused with the workflow's reason (exit 1), a --role without its --member is a usage error."""
    assert (await cli("submit", str(referral.file))).code == 0
    async with httpx.AsyncClient(base_url=cli.url, timeout=60) as api:
        accepted = await api.post(
            f"/api/referrals/{referral.key}/decision", json={"decision": "accept", "track_id": "adult-mh"}
        )
    assert accepted.status_code == 200, accepted.text

    moved = await cli("team", referral.key, "--role", "primary-therapist", "--member", "lmft-chen")

    assert moved.code == 0, moved
    assert "primary therapist: David Chen, LMFT (lmft-chen)" in moved.out
    assert "phase intake_scheduled" in moved.out
    as_json = await cli("team", referral.key, "--role", "nurse", "--member", "rn-murphy", "--json")
    assert as_json.code == 0, as_json
    view = json.loads(as_json.out)
    assert view["team"]["primary_therapist"]["id"] == "lmft-chen"
    assert [h["members"]["primary_therapist"] for h in view["team_history"]] == ["lcsw-reyes", "lmft-chen"]
    shown = await cli("show", referral.key)
    assert "care team reassigned" in shown.out

    refused = await cli("team", referral.key, "--role", "primary-therapist", "--member", "ladc-brooks")
    assert refused.code == 1, refused
    assert "ladc-brooks does not work on track adult-mh" in refused.err
    unpaired = await cli("team", referral.key, "--role", "nurse", "--role", "prescriber", "--member", "rn-murphy")
    assert unpaired.code == 2, unpaired
    assert "give one --member for each --role" in unpaired.err
    unknown_role = await cli("team", referral.key, "--role", "therapist", "--member", "lmft-chen")
    assert unknown_role.code == 2, unknown_role
    missing = await cli("team", "hapi-test.no-such-referral.0000000000", "--role", "nurse", "--member", "rn-murphy")
    assert missing.code == 1, missing
    assert "no referral with id hapi-test.no-such-referral.0000000000" in missing.err
    assert_no_phi(cli, referral)


# ---- the API out of reach ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["list"], ["show", "x"], ["submit", "FILE"]])
async def test_an_unreachable_api_exits_3_within_seconds(cli, referral, command):
    nothing_there = f"http://127.0.0.1:{free_port()}"
    args = [str(referral.file) if arg == "FILE" else arg for arg in command]

    run = await cli(*args, api_url=nothing_there)

    assert run.code == 3, run
    assert run.seconds < 10
    assert f"cannot reach the API at {nothing_there}" in run.err


async def test_against_an_api_requiring_sign_in_the_token_comes_from_the_environment(
    tmp_path, temporal_env, hapi_base_url, hapi_client
):
    """Without IOP_API_TOKEN the server's refusal is shown (exit 1); with a case manager's token it lists."""
    auth = auth_settings(tmp_path)
    async with running_api(temporal_env, hapi_base_url, hapi_client, queue_prefix="cli-auth", auth=auth) as url:
        terminal = Terminal(url)
        anonymous = await terminal("list")
        [bearer] = token("case-manager").values()
        signed_in = await terminal("list", "--json", env_vars={"IOP_API_TOKEN": bearer.removeprefix("Bearer ")})

    assert anonymous.code == 1, anonymous
    assert "bearer token is required" in anonymous.text
    assert signed_in.code == 0, signed_in
    assert isinstance(json.loads(signed_in.out), list)  # other tests' referrals share the server


async def test_audit_lists_who_did_what_to_a_referral(cli, referral):
    """The submission and the read are on the trail (the loopback API's user is ``local``), newest first."""
    submitted = await cli("submit", str(referral.file))
    shown = await cli("show", referral.key)
    as_json = await cli("audit", "--referral", referral.key, "--json")
    as_table = await cli("audit", "--referral", referral.key, "--user", "local")
    nothing = await cli("audit", "--user", "nobody-at-all")

    assert (submitted.code, shown.code, as_json.code, as_table.code, nothing.code) == (0, 0, 0, 0, 0)
    records = json.loads(as_json.out)
    assert [(r["user"], r["action"], r["status"], r["outcome"], r["client"]) for r in records] == [
        ("local", "GET /api/referrals/{key}", 200, "ok", "127.0.0.1"),  # the CLI called from this machine
        ("local", "POST /fhir", 201, "ok", "127.0.0.1"),
    ]
    header, *rows = as_table.out.splitlines()
    assert header.split() == ["TIME", "USER", "ROLES", "FROM", "ACTION", "REFERRAL", "STATUS", "OUTCOME"]
    assert len(rows) == 2
    assert "POST /fhir" in rows[1]
    assert referral.key in rows[1]
    assert "no audit records match" in nothing.err
    assert_no_phi(cli, referral)
