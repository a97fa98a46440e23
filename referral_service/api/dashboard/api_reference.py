"""The API reference for staff: the OpenAPI document and its page, behind the access rules (FastAPI's own
viewers are public and load scripts from other sites)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from referral_service.api.dashboard.openapi_view import reference
from referral_service.api.dashboard.pages import page

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/openapi.json")
async def openapi_document(request: Request) -> JSONResponse:
    """The OpenAPI document, for staff and their tools (behind the access rules, unlike FastAPI's own)."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse)
async def api_docs(request: Request) -> Response:
    """The API reference, rendered here from the OpenAPI document: no script, nothing from another site."""
    return page(request, "api_docs.html", title="API reference", ref=reference(request.app.openapi()))


@router.get("/redoc")
async def redoc() -> RedirectResponse:
    """Where FastAPI's second viewer used to be: the one reference page."""
    return RedirectResponse("/docs", status_code=303)
