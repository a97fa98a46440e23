"""The read model's one write: a referral's row, sent by its workflow as a local activity at every change
(the worker writes it to the service database; a stale or repeated row is ignored by its version)."""

from __future__ import annotations

from temporalio import activity

from referral_service.domain.referral_row import ReferralRow
from referral_service.store.referrals import ReferralRows


class ReadModelActivities:
    def __init__(self, rows: ReferralRows) -> None:
        self._rows = rows

    @activity.defn(name="record_referral_row")
    async def record_referral_row(self, row: ReferralRow) -> None:
        await self._rows.upsert(row)
