"""Every HTML page (dashboard pages, the sign-in flow's pages, the API reference) carries a Content-Security-Policy
that allows no inline script and no framing, ``nosniff`` and ``Referrer-Policy: no-referrer``; no page holds an
inline script, style or event handler the policy would have to allow. Real API (uvicorn, auth on, the loopback
OpenID provider), worker, Temporal dev server and HAPI."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.security import surfaces
from tests.security.surfaces import Stack

pytestmark = pytest.mark.timeout(300)
provider, stack = surfaces.provider, surfaces.stack  # the module's fixtures
INLINE = re.compile(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=", re.IGNORECASE)


def _policy(response: httpx.Response) -> dict[str, str]:
    policy = response.headers.get("content-security-policy", "")
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


def _assert_hardened(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html"), response.headers
    directives = _policy(response)
    assert directives.get("default-src") == "default-src 'self'", directives
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", directives
    script = directives.get("script-src", directives["default-src"])
    assert "'unsafe-inline'" not in script
    assert "'unsafe-eval'" not in script
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert INLINE.findall(response.text) == [], "inline script or style the policy would have to allow"


@pytest.mark.parametrize("path", ["/inbox", "/caseload", "/groups", "/measures", "/audit", "/docs"])
async def test_every_dashboard_page_is_hardened(stack: Stack, path: str) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        page = await http.get(path, headers=stack.bearer("program-admin"))
    assert page.status_code == 200, page.text[:300]
    _assert_hardened(page)


async def test_a_referral_page_is_hardened(stack: Stack) -> None:
    key = await stack.submit()
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        page = await http.get(f"/referrals/{key}", headers=stack.bearer("case-manager"))
        missing = await http.get("/referrals/no-such-referral", headers=stack.bearer("case-manager"))
    assert page.status_code == 200, page.text[:300]
    _assert_hardened(page)
    assert missing.status_code == 404
    _assert_hardened(missing)


async def test_the_sign_in_pages_are_hardened(stack: Stack) -> None:
    """Signing in through the provider, then out: the pages the flow itself shows."""
    async with httpx.AsyncClient(base_url=stack.url, timeout=60, follow_redirects=True) as browser:
        inbox = await browser.get("/inbox")  # to the provider and back, signed in
        assert inbox.status_code == 200
        assert str(inbox.url).endswith("/inbox"), inbox.url
        _assert_hardened(inbox)
        refused = await browser.get("/auth/callback", params={"state": "forged", "code": "x"})
        _assert_hardened(refused)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', inbox.text)
        assert csrf is not None
        signed_out = await browser.post("/auth/logout", data={"csrf_token": csrf.group(1)})
    assert signed_out.status_code == 200
    _assert_hardened(signed_out)


async def test_the_stylesheet_is_served_with_nosniff(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        css = await http.get("/static/dashboard.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert css.headers["x-content-type-options"] == "nosniff"
