"""The HAPI test server's refusal switch (test only; hapi_test_server/README.md): writes of chosen resource types
answer a chosen HTTP status with a real OperationOutcome, as an EHR refusing them would."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx


def _admin_url(hapi_base_url: str) -> str:
    return hapi_base_url.removesuffix("/fhir") + "/admin/refusals"


async def set_refusals(hapi_base_url: str, refusals: dict[str, int]) -> None:
    """Refuse every write of these resource types with these statuses (``{}``: none)."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(_admin_url(hapi_base_url), json=refusals)
    response.raise_for_status()
    assert response.json() == refusals, "the HAPI server is not the one built from this checkout"


@contextlib.asynccontextmanager
async def refusing(hapi_base_url: str, refusals: dict[str, int]) -> AsyncIterator[None]:
    """The refusals for the block, switched off after it whatever happens (the server serves every test)."""
    await set_refusals(hapi_base_url, refusals)
    try:
        yield
    finally:
        await set_refusals(hapi_base_url, {})
