"""Two ``referral-service api`` processes behind one public address behave as one: a request may land on
either. Real processes (each with a state folder of its own, so nothing is shared through files), one worker,
one PostgreSQL service database, the Temporal dev server, HAPI and the loopback OpenID provider; auth on.

- Sign-in begun on A finishes on B (the sealed attempt cookie opens under the shared session key), the
  session works on both, and signing out on B ends it on A (the revocation is in the database).
- A referral posted to A is listed, decided and shown through B (the read model), and A's audit trail shows
  B's requests (the trail is in the database).
- A source's burst split across A and B is limited as one (the rate buckets are in the database).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from referral_service.config.auth import AuthSettings
from referral_service.devstack.postgres_server import PostgresServer
from referral_service.devstack.process import free_port
from referral_service.replay.clock import terminate_when_idle
from tests.api.test_signin import csrf_token
from tests.api_driver import Api
from tests.conftest import HAPI_SOURCE_ID
from tests.oidc_provider import PROGRAM_ADMIN, OidcProvider, serving, sign_in_settings
from tests.operations.processes import running, service_env, until_ready
from tests.polling import eventually

pytestmark = pytest.mark.timeout(300)

BURST = 3  # per source, then one a minute
BURST_SOURCE, QUIET_SOURCE = "burst-ehr", "quiet-ehr"  # the burst test's own sources (all served by HAPI)
PAGE = "/audit"  # reads the service database alone
FHIR_JSON = {"Content-Type": "application/fhir+json"}
STAFF = ("intake-coordinator", "clinician", "case-manager", "program-admin")


@dataclass
class TwoApis:
    a: str
    b: str
    provider: OidcProvider
    temporal: Client  # the cluster both processes use (the test ends what it started)

    def bearer(self, *roles: str, **claims: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.provider.access_token(*roles, **claims)}"}


def auth_env(auth: AuthSettings) -> dict[str, str]:
    """``[auth]`` as a deployment passes it, in ``IOP_AUTH_*`` variables (the session key a secret)."""
    assert auth.session_key is not None
    assert auth.public_base_url is not None
    assert auth.dashboard_client_id is not None
    return {
        "IOP_AUTH_ISSUER": auth.issuer,
        "IOP_AUTH_AUDIENCE": auth.audience,
        "IOP_AUTH_JWKS_URL": str(auth.jwks_url),
        "IOP_AUTH_PROGRAM": auth.program,
        "IOP_AUTH_DASHBOARD_CLIENT_ID": auth.dashboard_client_id,
        "IOP_AUTH_PUBLIC_BASE_URL": auth.public_base_url,
        "IOP_AUTH_SESSION_KEY": auth.session_key.get_secret_value(),
    }


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with serving(OidcProvider()) as running_provider:
        running_provider.user = PROGRAM_ADMIN
        yield running_provider


@pytest.fixture(scope="module")
async def apis(
    provider: OidcProvider,
    postgres: PostgresServer,
    temporal_env: WorkflowEnvironment,
    hapi_base_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[TwoApis]:
    folder = tmp_path_factory.mktemp("two-apis")
    database = f"service_{uuid.uuid4().hex[:8]}"
    postgres.create_database(database)
    sources = "".join(
        f'[[sources]]\nid = "{source}"\nbase_url = "{hapi_base_url}"\n\n'
        for source in (HAPI_SOURCE_ID, BURST_SOURCE, QUIET_SOURCE)
    )
    config = f"{sources}[intake]\nper_source_per_minute = 1\nburst = {BURST}\n"
    temporal_address = temporal_env.client.service_client.config.target_host
    common = service_env(folder, temporal_address, f"two-apis-{uuid.uuid4().hex[:8]}", config)
    ports = {"a": int(common["IOP_API_PORT"]), "b": free_port()}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    # Behind a proxy both would have one public address; here it is A's, and the test routes to B by hand.
    common |= auth_env(sign_in_settings(provider, urls["a"])) | {"IOP_DATABASE_URL": postgres.url(database)}

    def own(name: str) -> dict[str, str]:
        port = {"IOP_API_PORT": str(ports[name])} if name in ports else {}
        return common | {"IOP_STATE_DIR": str(folder / f"state-{name}")} | port

    with (
        running(["worker"], own("worker"), folder / "worker.log") as worker,
        running(["api"], own("a"), folder / "a.log") as api_a,
        running(["api"], own("b"), folder / "b.log") as api_b,
    ):
        async with httpx.AsyncClient(timeout=10) as http:
            for url, process, log in ((urls["a"], api_a, "a"), (urls["b"], api_b, "b")):
                await until_ready(http, f"{url}/readyz", process, folder / f"{log}.log")
            await until_ready(
                http, f"http://127.0.0.1:{common['IOP_WORKER_HEALTH_PORT']}/readyz", worker, folder / "worker.log"
            )
        yield TwoApis(urls["a"], urls["b"], provider, temporal_env.client)


def _on(base: str, url: str) -> str:
    """``url``'s path and query on ``base``: where a proxy might have sent the request."""
    parts = urlsplit(url)
    return f"{base}{parts.path}?{parts.query}" if parts.query else f"{base}{parts.path}"


async def test_a_sign_in_begun_on_one_process_finishes_on_the_other_and_sign_out_there_ends_it_here(apis: TwoApis):
    async with httpx.AsyncClient(timeout=60, follow_redirects=False) as browser:  # cookies go to either port
        page = await browser.get(f"{apis.a}{PAGE}")
        assert page.status_code == 303, page.text
        login = await browser.get(_on(apis.a, page.headers["location"]))
        assert login.status_code == 303, login.text
        approved = await browser.get(login.headers["location"])  # the provider approves the user
        assert approved.status_code == 302, approved.text
        back = await browser.get(_on(apis.b, approved.headers["location"]))  # the callback lands on B

        assert back.status_code == 303, back.text
        assert back.headers["location"] == PAGE
        for base in (apis.a, apis.b):
            assert (await browser.get(f"{base}{PAGE}")).status_code == 200, f"no session on {base}"

        copied = browser.cookies["iop_session"]
        token = await csrf_token(browser, f"{apis.b}{PAGE}")
        assert (await browser.post(f"{apis.b}/auth/logout", data={"csrf_token": token})).status_code == 200

    async with httpx.AsyncClient(cookies={"iop_session": copied}, timeout=60) as replaying:
        replayed = await replaying.get(f"{apis.a}{PAGE}")
    assert replayed.status_code == 303, "the session signed out on B still works on A"
    assert replayed.headers["location"].startswith("/auth/login")


async def test_a_referral_posted_to_one_process_is_listed_decided_and_shown_through_the_other(apis: TwoApis):
    hospital = apis.bearer("referring-system", source=HAPI_SOURCE_ID)
    async with (
        httpx.AsyncClient(base_url=apis.a, headers=hospital, timeout=60) as on_a,
        httpx.AsyncClient(base_url=apis.b, headers=apis.bearer(*STAFF, subject="ian.intake"), timeout=60) as on_b,
        httpx.AsyncClient(base_url=apis.a, headers=apis.bearer("program-admin"), timeout=60) as admin_on_a,
    ):
        key = await Api(on_a).submit()
        try:

            async def listed_on_b() -> bool:
                found = await on_b.get("/api/referrals")
                return found.status_code == 200 and key in [row["key"] for row in found.json()]

            await eventually(listed_on_b, "the referral in B's list (the read model)")
            through_b = Api(on_b)
            await through_b.snapshot_until(key, lambda s: s["phase"] == "screening", "screening")
            await through_b.accept(key, "adult-mh")
            shown = await through_b.snapshot_until(key, lambda s: s["phase"] == "intake_scheduled", "accepted")
            assert shown["track_id"] == "adult-mh"

            async def b_entries_on_a() -> set[tuple[str | None, str]]:
                trail = await admin_on_a.get("/api/audit", params={"referral": key})
                assert trail.status_code == 200, trail.text
                seen = {(entry["user"], entry["action"]) for entry in trail.json()}
                return seen if ("ian.intake", "POST /api/referrals/{key}/decision") in seen else set()

            seen = await eventually(b_entries_on_a, "B's decision in the audit trail A reads")
            assert ("system-1", "POST /fhir") in seen  # and A's own intake beside it
        finally:
            await terminate_when_idle(apis.temporal.get_workflow_handle(key), "test ended")


async def test_a_sources_burst_split_across_both_processes_is_limited_as_one(apis: TwoApis):
    """Twice the burst at once, half to each process: exactly the burst goes on (to intake, which refuses the
    empty Bundle), the rest are throttled; another source is not."""
    empty = {"resourceType": "Bundle", "type": "transaction", "entry": []}

    async def post(base: str, source: str) -> httpx.Response:
        headers = FHIR_JSON | apis.bearer("referring-system", source=source)
        async with httpx.AsyncClient(base_url=base, timeout=60) as hospital:
            return await hospital.post("/fhir", json=empty, headers=headers)

    answers = await asyncio.gather(*(post((apis.a, apis.b)[n % 2], BURST_SOURCE) for n in range(2 * BURST)))

    throttled = [answer for answer in answers if answer.status_code == 429]
    assert len(throttled) == BURST, [answer.status_code for answer in answers]
    for answer in throttled:
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
        assert [issue["code"] for issue in answer.json()["issue"]] == ["throttled"]
    for base in (apis.a, apis.b):
        assert (await post(base, QUIET_SOURCE)).status_code != 429
