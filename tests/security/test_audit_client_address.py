"""The audit trail names where each request came from: the connection's peer, or, from the deployment's own
reverse proxy alone, the address its forwarding header names. A caller cannot write another address in.

Real parts: the app with its service database (SQLite in the test's folder) and Temporal's dev server; the
requests come through httpx's ASGI transport, which sets the connection's peer the test chooses.
"""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from referral_service.api.app import create_app
from tests.api_server import service_settings

PROXY = "10.0.0.2"


@pytest.mark.parametrize(
    ("peer", "forwarded", "recorded"),
    [
        ("192.0.2.7", None, "192.0.2.7"),  # no proxy: the connection's peer
        ("192.0.2.7", "203.0.113.9", "192.0.2.7"),  # a header from a stranger is ignored
        (PROXY, "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # our proxy's: the hop it appended
        (PROXY, f"203.0.113.9, {PROXY}", "203.0.113.9"),  # a chain of our proxies: the first hop not ours
    ],
    ids=["peer", "untrusted-header", "trusted-proxy", "proxy-chain"],
)
async def test_the_trail_records_the_callers_address(
    peer, forwarded, recorded, tmp_path, hapi_base_url, temporal_env: WorkflowEnvironment
):
    settings = service_settings(hapi_base_url, "client-address").model_copy(
        update={"trusted_proxies": (PROXY,), "database_url": SecretStr(f"sqlite:///{tmp_path / 'service.sqlite'}")}
    )
    app = create_app(settings, temporal_env.client)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as api:
            assert (await api.get("/api/referrals/hapi-test.none.0000000000", headers=headers)).status_code == 404
            trail = (await api.get("/api/audit", params={"action": "GET /api/referrals/{key}"})).json()

    assert [entry["client"] for entry in trail] == [recorded]
