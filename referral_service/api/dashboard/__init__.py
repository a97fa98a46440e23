"""The case-manager dashboard: server-rendered HTML (Jinja2, autoescaped) over the case-manager API's helpers."""

from referral_service.api.dashboard import today
from referral_service.api.dashboard.routes import STATIC_DIR, router

__all__ = ["STATIC_DIR", "router", "today"]
