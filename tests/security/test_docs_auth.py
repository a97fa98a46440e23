"""With auth on, the API's description (``/openapi.json``, ``/docs``, ``/redoc``) is for staff only, and the
reference page loads nothing from another site and runs no script. Real API (uvicorn, auth on, the loopback
OpenID provider), worker, Temporal dev server and HAPI."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.security import surfaces
from tests.security.surfaces import STAFF_ROLES, Stack

pytestmark = pytest.mark.timeout(300)
provider, stack = surfaces.provider, surfaces.stack  # the module's fixtures


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
async def test_without_a_token_they_answer_401(stack: Stack, path: str) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        answer = await http.get(path, headers={"Accept": "application/json"})
    # A browser without a session is sent to sign in (303 to /auth/login); a tool without a token gets 401.
    assert answer.status_code in (401, 303), answer.text[:300]
    if answer.status_code == 303:
        assert answer.headers["location"].startswith("/auth/login")
    assert "openapi" not in answer.text.lower()


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
async def test_a_referring_systems_token_is_refused(stack: Stack, path: str) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        answer = await http.get(path, headers=stack.bearer("referring-system", source="hapi-test"))
    assert answer.status_code == 403, answer.text[:300]


@pytest.mark.parametrize("role", STAFF_ROLES)
async def test_staff_read_the_document_and_the_reference(stack: Stack, role: str) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        document = await http.get("/openapi.json", headers=stack.bearer(role))
        docs = await http.get("/docs", headers=stack.bearer(role))
        redoc = await http.get("/redoc", headers=stack.bearer(role))
    assert document.status_code == 200
    assert "/api/referrals/{key}" in document.json()["paths"]
    assert docs.status_code == 200
    assert 'data-operation="GET /api/referrals/{key}"' in docs.text
    assert (redoc.status_code, redoc.headers.get("location")) == (303, "/docs")


async def test_the_reference_loads_nothing_from_another_site(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        docs = await http.get("/docs", headers=stack.bearer("clinician"))
    assert docs.status_code == 200
    loaded = re.findall(r'(?:src|href)="([^"#]+)"', docs.text)
    assert loaded, "the page links its stylesheet at least"
    assert [url for url in loaded if not url.startswith("/")] == []
    assert "<script" not in docs.text.lower()
