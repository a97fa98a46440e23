"""Rendering a dashboard page: the templates (autoescaped), the caller's context and the one-time notice a
form's redirect left in a cookie (POST-redirect-GET)."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from referral_service.api.access import principal_of
from referral_service.api.signin.session import browser_context
from referral_service.api.tokens import Role

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
FLASH_COOKIE = "iop_dashboard_flash"
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every page: values from referrals never become markup
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    flash = _read_flash(request)
    admin = Role.PROGRAM_ADMIN in principal_of(request).roles  # the audit trail's link: only where it opens
    html = TEMPLATES.get_template(template).render(
        flash=flash, path=request.url.path, admin=admin, **browser_context(request), **context
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def redirect(to: str, kind: str, text: str) -> RedirectResponse:
    """POST-redirect-GET; the outcome travels in a short-lived cookie and shows once."""
    response = RedirectResponse(to, status_code=303)
    value = base64.urlsafe_b64encode(json.dumps({"kind": kind, "text": text[:500]}).encode()).decode()
    response.set_cookie(FLASH_COOKIE, value, max_age=60, path="/", httponly=True, samesite="strict")
    return response


def _read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        flash = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(flash, dict) or flash.get("kind") not in ("error", "notice"):
        return None
    return {"kind": str(flash["kind"]), "text": str(flash.get("text", ""))}
