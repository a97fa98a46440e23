"""The case-manager API's answer to a ``ReferralError``: its status, and why in ``detail`` (FastAPI's shape)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from referral_service.referrals.errors import ReferralError


def referral_error_response(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ReferralError)
    return JSONResponse({"detail": str(error)}, status_code=error.status)
