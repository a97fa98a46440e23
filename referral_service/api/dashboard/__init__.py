"""The case-manager dashboard: server-rendered HTML (Jinja2, autoescaped), one module per page, over the
referral service (``referral_service.referrals``) and the read model."""

from referral_service.api.dashboard import (
    api_reference,
    audit_page,
    caseload,
    groups,
    inbox,
    measures_page,
    referral_page,
    today,
)
from referral_service.api.dashboard.pages import STATIC_DIR

PAGES = (inbox, caseload, referral_page, groups, today, measures_page, audit_page, api_reference)
ROUTERS = tuple(page_module.router for page_module in PAGES)

__all__ = ["ROUTERS", "STATIC_DIR"]
