"""A dashboard session ends, whatever the access token's lifetime: at sign-out on every API process (a copied
cookie is dead too), after ``session_max_hours`` and after ``session_idle_minutes`` without a request.

Real parts: the loopback OpenID provider, two API processes' apps (uvicorn each, their own engines) on one
service database, Temporal's dev server and HAPI; the browser is an httpx cookie jar following no redirects.
The page visited is the audit trail's (a program admin's): it reads the service database alone, so its
answer time does not depend on how many referrals the shared Temporal server holds.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from referral_service.config.auth import AuthSettings
from referral_service.devstack.process import free_port
from referral_service.ehr.client import FhirClient
from referral_service.store.database import sqlite_url
from tests.api.test_signin import csrf_token, sign_in
from tests.api_server import running_api
from tests.oidc_provider import PROGRAM_ADMIN, OidcProvider, serving, sign_in_settings

TEN_YEARS = 10 * 365 * 24 * 3600
PAGE = "/audit"
SIGN_IN_AGAIN = "/auth/login?next=%2Faudit"


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with serving(OidcProvider()) as running:
        running.user = PROGRAM_ADMIN
        running.access_lifetime = TEN_YEARS  # what must not make a ten-year session
        yield running


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def auth(provider: OidcProvider, port: int) -> AuthSettings:
    return sign_in_settings(provider, f"http://127.0.0.1:{port}")


@pytest.fixture
async def two_apis(
    auth: AuthSettings, port: int, tmp_path, temporal_env: WorkflowEnvironment, hapi_base_url, hapi_client: FhirClient
) -> AsyncIterator[tuple[str, str]]:
    """Two API processes' apps on one service database; sign-in comes back to the first."""
    shared = {"database_url": SecretStr(sqlite_url(tmp_path / "service.sqlite"))}
    async with (
        running_api(
            temporal_env,
            hapi_base_url,
            hapi_client,
            queue_prefix="sessions",
            auth=auth,
            port=port,
            overrides=shared,
        ) as first,
        running_api(
            temporal_env,
            hapi_base_url,
            hapi_client,
            queue_prefix="sessions",
            auth=auth,
            overrides=shared,
        ) as second,
    ):
        yield first, second


def _one_api(auth: AuthSettings, port: int, tmp_path, temporal_env, hapi_base_url, hapi_client):
    """One API process with ``auth``, its service database in ``tmp_path``."""
    database = {"database_url": SecretStr(sqlite_url(tmp_path / "service.sqlite"))}
    return running_api(
        temporal_env, hapi_base_url, hapi_client, queue_prefix="sessions", auth=auth, port=port, overrides=database
    )


def _max_age(response: httpx.Response) -> int:
    [cookie] = [h for h in response.headers.get_list("set-cookie") if h.startswith("iop_session=")]
    found = re.search(r"Max-Age=(\d+)", cookie)
    assert found is not None, cookie
    return int(found.group(1))


async def test_a_copied_cookie_is_dead_on_every_api_process_after_sign_out(two_apis):
    first, second = two_apis
    async with httpx.AsyncClient(base_url=first, timeout=60, follow_redirects=False) as browser:
        assert (await sign_in(browser, start=PAGE)).status_code == 303
        copied = browser.cookies["iop_session"]
        async with httpx.AsyncClient(base_url=second, cookies={"iop_session": copied}, timeout=60) as elsewhere:
            assert (await elsewhere.get(PAGE)).status_code == 200, "a session works on either process"
            token = await csrf_token(elsewhere, PAGE)
            signed_out = await elsewhere.post("/auth/logout", data={"csrf_token": token})
        assert signed_out.status_code == 200

        for base in (first, second):
            async with httpx.AsyncClient(base_url=base, cookies={"iop_session": copied}, timeout=60) as replaying:
                replayed = await replaying.get(PAGE)
            assert replayed.status_code == 303, f"the signed-out cookie still works on {base}"
            assert replayed.headers["location"] == SIGN_IN_AGAIN


async def test_a_ten_year_token_gives_a_session_of_the_configured_cap(
    provider, port, temporal_env, hapi_base_url, hapi_client, tmp_path
):
    capped = sign_in_settings(provider, f"http://127.0.0.1:{port}").model_copy(update={"session_max_hours": 0.001})
    async with (
        _one_api(capped, port, tmp_path, temporal_env, hapi_base_url, hapi_client) as api,
        httpx.AsyncClient(base_url=api, timeout=60, follow_redirects=False) as browser,
    ):
        back = await sign_in(browser, start=PAGE)
        assert back.status_code == 303
        assert _max_age(back) <= 4  # 0.001 h = 3.6 s, although the token lives ten years
        copied = back.cookies["iop_session"]
        assert (await browser.get(PAGE)).status_code == 200

        await asyncio.sleep(4.5)

        async with httpx.AsyncClient(base_url=api, cookies={"iop_session": copied}, timeout=60) as replaying:
            assert (await replaying.get(PAGE)).status_code == 303


async def test_a_session_left_idle_ends_and_one_in_use_goes_on(
    provider, port, temporal_env, hapi_base_url, hapi_client, tmp_path
):
    idle = sign_in_settings(provider, f"http://127.0.0.1:{port}").model_copy(update={"session_idle_minutes": 0.1})
    async with (
        _one_api(idle, port, tmp_path, temporal_env, hapi_base_url, hapi_client) as api,
        httpx.AsyncClient(base_url=api, timeout=60, follow_redirects=False) as browser,
    ):
        assert (await sign_in(browser, start=PAGE)).status_code == 303
        started = time.monotonic()
        while time.monotonic() - started < 9:  # longer than the 6 s idle timeout, but never idle for 3 s
            assert (await browser.get(PAGE)).status_code == 200, "a session in use must not end"
            await asyncio.sleep(2)

        await asyncio.sleep(7)

        left = await browser.get(PAGE)
        assert left.status_code == 303
        assert left.headers["location"] == SIGN_IN_AGAIN
