"""A dashboard form post, as one dependency: refused unless it comes from the dashboard's own origin (its CSRF
token is checked app-wide, ``access.forms_carry_csrf``), read once, and answered by a redirect carrying a notice.

A handler raises ``Bounce`` (``form.refuse``) or lets ``form.attempt`` turn a ``ReferralError`` into one; the app's
one handler for ``Bounce`` makes the redirect, so no handler repeats the ``except`` that does it."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from referral_service.api.dashboard.pages import redirect
from referral_service.referrals.errors import ReferralError

FORM_LIMIT = 4096
T = TypeVar("T")


class Bounce(Exception):
    """The form did not do what it asked: back to ``to`` with ``text`` as the error."""

    def __init__(self, to: str, text: str) -> None:
        super().__init__(text)
        self.to, self.text = to, text


class PostedForm:
    """The posted fields (first value of each); ``back`` is where the redirect goes, the page the form is on."""

    def __init__(self, fields: dict[str, str], back: str) -> None:
        self.fields, self.back = fields, back

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)

    def refuse(self, text: str) -> Bounce:
        return Bounce(self.back, text)

    async def attempt(self, call: Awaitable[T], refused: str) -> T:
        """``call``'s answer; a ``ReferralError`` goes back to the page as ``<refused>: <why>``."""
        try:
            return await call
        except ReferralError as error:
            raise self.refuse(f"{refused}: {error}") from None

    def done(self, text: str) -> RedirectResponse:
        return redirect(self.back, "notice", text)


async def posted_form(request: Request) -> PostedForm:
    _same_origin(request)
    body = await request.body()
    if len(body) > FORM_LIMIT:
        raise HTTPException(413, detail="form too large")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return PostedForm({name: values[0] for name, values in fields.items()}, back=_page_of(request.url.path))


def bounce_response(_request: Request, bounce: Exception) -> Response:
    assert isinstance(bounce, Bounce)
    return redirect(bounce.to, "error", bounce.text)


def _page_of(path: str) -> str:
    """The page a form posts from: a referral's own page for its forms, the inbox for a decision, else itself."""
    if path.endswith("/decision"):
        return "/inbox"
    if path.startswith("/referrals/"):
        return quote(path.rsplit("/", 1)[0], safe="/")
    return path


def _same_origin(request: Request) -> None:
    """Refuse a cross-site form post. Browsers say where a request comes from in ``Sec-Fetch-Site``; under the
    pages' ``Referrer-Policy: no-referrer`` their form posts carry ``Origin: null``, so Origin is only the
    fallback for a browser without it."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        same = site == "same-origin"
    else:
        origin = request.headers.get("origin")
        same = origin is None or urlsplit(origin).netloc == request.headers.get("host")
    if not same:
        raise HTTPException(403, detail="cross-origin form posts are refused")


FormDep = Annotated[PostedForm, Depends(posted_form)]
