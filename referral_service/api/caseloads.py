"""Caseloads the service knows: open referrals per staff member, counted from the read model, given to team
assignment (an acceptance) and reassignment in place of whatever the caller sent.

The inputs keep their ``caseloads`` field so recorded histories replay; the API ignores a caller's value.
"""

from __future__ import annotations

from typing import TypeVar

from referral_service.domain.program import Program, StaffMember
from referral_service.domain.referral import Frozen
from referral_service.store.referrals import ReferralRows
from workflows.referral_types import ReassignTeamInput, ScreeningDecisionInput

Assigning = TypeVar("Assigning", ScreeningDecisionInput, ReassignTeamInput)


class StaffLoad(Frozen):
    """One roster member's open referrals against their limit (the caseload page's table)."""

    member: StaffMember
    open: int

    @property
    def full(self) -> bool:
        return self.open >= self.member.caseload_limit


async def with_caseloads(rows: ReferralRows, body: Assigning) -> Assigning:
    """``body`` with the read model's caseloads (a decision other than accept needs none: left as sent, empty)."""
    if isinstance(body, ScreeningDecisionInput) and body.decision != "accept":
        return body.model_copy(update={"caseloads": {}})
    return body.model_copy(update={"caseloads": await rows.caseloads()})


async def staff_loads(rows: ReferralRows, program: Program) -> list[StaffLoad]:
    """Every roster member's load, by role then name."""
    counts = await rows.caseloads()
    members = sorted(program.roster, key=lambda m: (m.role, m.name))
    return [StaffLoad(member=m, open=counts.get(m.id, 0)) for m in members]
