"""A demo caseload for ``referral-service dev --demo``: about thirty referrals in every phase, built from the
shipped scenarios, so a newcomer sees the dashboard alive minutes after a fresh checkout.

Each placement takes one scenario and the day of its story that is today: the story is moved in time so
that day falls on today (the hospital discharge weeks ago for a referral deep in treatment), its referral
is seeded in the EHR and posted to the running API's ``/fhir`` as a hospital would, and the timeline's
events up to that day are sent to the referral's workflow as the case manager's tools send them. Nothing is
skipped in time: the deadlines still ahead are real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from temporalio.client import Client, WorkflowUpdateFailedError

from referral_service.config import Settings
from referral_service.domain.program import Program
from referral_service.ehr.client import FhirClient
from referral_service.programs import load_program
from referral_service.replay import seeding
from referral_service.replay.clock import until_idle
from referral_service.replay.scenario import SHIPPED_DIR, Discharge, load_scenario
from referral_service.replay.steps import send_step, steps
from workflows.referral import ReferralWorkflow

AT_ONCE = 4  # referrals loaded side by side


@dataclass(frozen=True)
class Placement:
    scenario: str  # a file under scenarios/, without .toml
    today: int | None  # the story's day that is today; None: just received, nothing decided yet


PLAN: tuple[Placement, ...] = (
    *(Placement(name, None) for name in ("adult-mh-step-down", "adolescent-php-to-iop", "sud-no-shows-drop-out")),
    *(Placement(name, None) for name in ("co-occurring-transfer-up", "adult-mh-step-down", "cancelled-by-referrer")),
    Placement("adolescent-php-to-iop", None),
    Placement("waitlist-then-accept", 0),
    Placement("waitlist-then-accept", 2),
    Placement("decline-no-capacity", 0),
    Placement("decline-no-capacity", 0),
    Placement("adult-mh-step-down", 0),
    Placement("adult-mh-step-down", 1),
    Placement("adolescent-php-to-iop", 1),
    Placement("adult-mh-step-down", 20),
    Placement("adult-mh-step-down", 40),
    Placement("adult-mh-step-down", 60),
    Placement("adolescent-php-to-iop", 30),
    Placement("adolescent-php-to-iop", 50),
    Placement("sud-no-shows-drop-out", 10),
    Placement("sud-no-shows-drop-out", 19),  # four sessions missed in a row: at risk, outreach requested
    Placement("co-occurring-transfer-up", 12),
    Placement("waitlist-then-accept", 12),
    Placement("adult-mh-step-down", 86),  # discharged two days ago: aftercare, follow-ups ahead
    Placement("sud-no-shows-drop-out", 25),
    Placement("adult-mh-step-down", 114),
    Placement("adolescent-php-to-iop", 103),
    Placement("co-occurring-transfer-up", 21),
    Placement("cancelled-by-referrer", 15),
    Placement("cancelled-by-referrer", 15),
)


async def load_demo(
    api_url: str,
    temporal: Client,
    ehr: FhirClient,
    program: Program,
    *,
    progress: Callable[[str], None],
    plan: tuple[Placement, ...] = PLAN,
) -> Counter[str]:
    """Load ``plan`` through the API at ``api_url`` (with ``ehr`` as the referring EHR); the phases reached."""
    gate = asyncio.Semaphore(AT_ONCE)
    run = uuid.uuid4().hex[:6]
    phases: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=api_url, timeout=120) as api:

        async def place(number: int, placement: Placement) -> None:
            async with gate:
                phase = await _place(api, temporal, ehr, program, placement, f"demo-{run}-{number}")
            phases[phase] += 1
            progress(f"demo: {sum(phases.values())}/{len(plan)} {placement.scenario} -> {phase}")

        await asyncio.gather(*(place(n, p) for n, p in enumerate(plan)))
    return phases


async def _place(
    api: httpx.AsyncClient, temporal: Client, ehr: FhirClient, program: Program, placement: Placement, suffix: str
) -> str:
    scenario = load_scenario(SHIPPED_DIR / f"{placement.scenario}.toml")
    spec = scenario.referral.model_copy(update={"source": ehr.source.id})
    day0 = datetime.now(UTC) - timedelta(days=placement.today or 0)
    prepared = seeding.prepare(spec, program, day0=day0, order_suffix=suffix)
    await seeding.seed(ehr, prepared)
    path = "/fhir/ServiceRequest" if prepared.payload["resourceType"] == "ServiceRequest" else "/fhir"
    headers = {"Content-Type": "application/fhir+json", "X-Referral-Source": ehr.source.id}
    answer = await api.post(path, json=prepared.payload, headers=headers)
    if answer.status_code not in (200, 201):
        return f"refused ({answer.status_code})"
    handle = temporal.get_workflow_handle_for(ReferralWorkflow.run, answer.json()["id"])
    applied = [(day, step) for day, step in steps(scenario) if placement.today is not None and day <= placement.today]
    for day, step in applied:
        try:
            await send_step(handle, day0, day, step, zone=program.time_zone)
        except WorkflowUpdateFailedError as refused:
            return f"stopped: {refused.cause}"
        if isinstance(step, Discharge):  # follow-ups are taken once the workflow has moved on into aftercare
            await until_idle(handle)
    await until_idle(handle)  # a new referral moves into screening, a cancel signal lands, aftercare closes
    return str((await handle.query(ReferralWorkflow.snapshot)).phase)


async def load_into_stack(settings: Settings, client: Client) -> None:
    """The demo caseload, through the stack's own API once it answers (see ``replay.demo``)."""
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    async with httpx.AsyncClient(base_url=api_url, timeout=5) as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/readyz")).status_code == 200:
                    break
            await asyncio.sleep(1)
    [source] = settings.sources
    async with FhirClient(source.connection()) as ehr:
        phases = await load_demo(
            api_url, client, ehr, load_program(settings.program_file), progress=lambda line: print(line, flush=True)
        )
    print("demo caseload loaded: " + ", ".join(f"{n} {phase}" for phase, n in sorted(phases.items())), flush=True)
