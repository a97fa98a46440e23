"""The referral lists from the read model (``store.referrals``): the list API, the inbox and the caseload read
rows there, never a workflow. A row's patient is shown through the caller's role view (``role_views``); a row
whose sealed details do not open is listed as unreadable, never failing the page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from fastapi import Request

from referral_service.api.access import principal_of
from referral_service.api.deps import AppState
from referral_service.api.role_views import person_view, referrer_shown
from referral_service.api.tokens import Role
from referral_service.domain.program import Program
from referral_service.domain.program_day import Today
from referral_service.referrals.listing import FAILED, failed_referrals
from referral_service.store.referrals import StoredRow

# The rows of a workflow that has not ended say "running"; of one that has, "completed" (the read model knows
# the referral's story, not the execution: a failed workflow is the visibility store's to list).
RUNNING, COMPLETED = "running", "completed"


def patient_name(person: dict[str, object]) -> str | None:
    """ "Given Family" from a person view, None when the view shows no name."""
    given = person.get("given")
    words = [*(given if isinstance(given, list) else []), person.get("family")]
    shown = " ".join(str(word) for word in words if word)
    return shown or None


class RowViewer:
    """Shows rows to one caller: their roles' person view, ages on the program's day; ``failed`` (key ->
    execution status) the referrals whose workflow failed or was terminated, shown as ``failed``."""

    def __init__(
        self,
        roles: Iterable[Role],
        program: Program,
        now: datetime | None = None,
        failed: Mapping[str, str] | None = None,
    ) -> None:
        self._roles = frozenset(roles)
        self._today = Today.at(now or datetime.now(UTC), program.time_zone).day
        self.shows_referrer = referrer_shown(self._roles)
        self._failed = failed or {}

    def person(self, stored: StoredRow) -> dict[str, object] | None:
        """The patient as the roles may see them; None when the row's seal did not open."""
        if not stored.readable:
            return None
        return person_view(stored.row.person, self._roles, self._today)

    def referrer(self, stored: StoredRow) -> str | None:
        return stored.row.referrer if self.shows_referrer else None

    def status(self, stored: StoredRow) -> str:
        if stored.row.key in self._failed:
            return self._failed[stored.row.key]
        return COMPLETED if stored.row.ended else RUNNING

    def phase(self, stored: StoredRow) -> str:
        """The row's phase, or ``failed``: a workflow that failed never wrote a last row."""
        return FAILED if stored.row.key in self._failed else stored.row.phase


async def viewer_for(request: Request, services: AppState) -> RowViewer:
    """A viewer for the caller's list now, knowing which referrals' workflows failed (one search-index query)."""
    failed = await failed_referrals(services.temporal, services.settings.task_queue)
    return RowViewer(principal_of(request).roles, services.program, failed=failed)
