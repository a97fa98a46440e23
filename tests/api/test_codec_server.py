"""The codec server: the Temporal UI shows history payloads decrypted, to program admins only."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.api.app import create_app
from referral_service.config import Settings
from tests.api_server import service_settings
from tests.auth_tokens import auth_settings, token

UI_ORIGIN = "http://127.0.0.1:8233"


@pytest.fixture
async def api(
    tmp_path: Path, hapi_base_url: str, temporal_env: WorkflowEnvironment
) -> AsyncIterator[httpx.AsyncClient]:
    settings: Settings = service_settings(hapi_base_url, "codec").model_copy(
        update={"auth": auth_settings(tmp_path), "temporal_ui_url": UI_ORIGIN}
    )
    app = create_app(settings, temporal_env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


async def test_history_payloads_decrypt_for_a_program_admin(
    api: httpx.AsyncClient, temporal_env: WorkflowEnvironment
) -> None:
    """What the workflow history holds (encrypted by the client's converter) comes back readable."""
    [sealed] = await temporal_env.client.data_converter.encode([{"phase": "screening"}])
    body = {"payloads": [{"metadata": {k: _b64(v) for k, v in sealed.metadata.items()}, "data": _b64(sealed.data)}]}

    decoded = await api.post("/codec/decode", json=body, headers=token("program-admin"))

    assert decoded.status_code == 200, decoded.text
    [payload] = decoded.json()["payloads"]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
    assert json.loads(base64.b64decode(payload["data"])) == {"phase": "screening"}


async def test_encode_then_decode_round_trips_and_hides_the_content(api: httpx.AsyncClient) -> None:
    admin = token("program-admin")
    plain = {"payloads": [{"metadata": {"encoding": _b64(b"json/plain")}, "data": _b64(b'"cancel please"')}]}

    encoded = await api.post("/codec/encode", json=plain, headers=admin)
    decoded = await api.post("/codec/decode", json=encoded.json(), headers=admin)

    assert encoded.status_code == 200, encoded.text
    assert b"cancel please" not in base64.b64decode(encoded.json()["payloads"][0]["data"])
    assert decoded.json() == plain


@pytest.mark.parametrize(("headers", "status"), [({}, 401), (token("clinician"), 403), (token("case-manager"), 403)])
async def test_only_program_admins_may_decode(api: httpx.AsyncClient, headers: dict[str, str], status: int) -> None:
    response = await api.post("/codec/decode", json={"payloads": []}, headers=headers)
    assert response.status_code == status, response.text


async def test_browsers_may_call_it_from_the_temporal_ui_origin_only(api: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}

    ui = await api.options("/codec/decode", headers=preflight | {"Origin": UI_ORIGIN})
    stranger = await api.options("/codec/decode", headers=preflight | {"Origin": "https://evil.example"})

    assert ui.status_code == 200
    assert ui.headers["access-control-allow-origin"] == UI_ORIGIN
    assert stranger.status_code == 400
    assert "access-control-allow-origin" not in stranger.headers
