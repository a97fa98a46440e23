"""The dashboard's lists from the read model: one query per page, the patient shown through the caller's role
view (``referral_list.RowViewer``), never a workflow query for a row's team, flags or person."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from referral_service.api.dashboard.views import CaseloadRow, countdown
from referral_service.api.referral_list import RowViewer, patient_name
from referral_service.domain.program import Program, StaffRole
from referral_service.store.referrals import ReferralRows, RowQuery, StoredRow

SEARCH_LIMIT = 200  # the longest search text a page takes (a name or an order number is far shorter)


def search_text(q: str) -> str | None:
    """The search box's text, None when empty (the text is PHI: it is never logged or put into a link)."""
    text = q.strip()[:SEARCH_LIMIT]
    return text or None


LIST_LIMIT = 1000  # rows a list page shows (the inbox and the caseload board)


async def open_rows(
    rows: ReferralRows, phases: Sequence[str], q: str | None, *, track: str | None = None
) -> list[StoredRow]:
    """Up to ``LIST_LIMIT`` open rows in ``phases`` (on ``track``, matching ``q``)."""
    return await rows.find(RowQuery(open_only=True, phases=tuple(phases), track_id=track, text=q, limit=LIST_LIMIT))


def person_cells(viewer: RowViewer, stored: StoredRow) -> dict[str, Any]:
    """The patient column: name, "sex, age", MRN and phone as far as the role sees them."""
    person = viewer.person(stored)
    if person is None:
        return {"readable": False, "name": None, "facts": None, "mrn": None, "phone": None}
    facts = ", ".join(str(person[f]) for f in ("gender", "age") if person.get(f) is not None) or None
    return {
        "readable": True,
        "name": patient_name(person),
        "facts": facts,
        "mrn": person.get("mrn"),
        "phone": person.get("phone"),
    }


def caseload_row(stored: StoredRow, viewer: RowViewer, program: Program, now: datetime) -> CaseloadRow:
    row = stored.row
    staff = {member.id: member.name for member in program.roster}
    case_manager = row.team.get(StaffRole.CASE_MANAGER.value)
    return CaseloadRow(
        key=row.key,
        phase=viewer.phase(stored),
        track=row.track_id,
        at_risk=row.at_risk,
        overdue=bool(row.overdue) or (row.next_deadline is not None and row.next_deadline < now),
        next_deadline=row.next_deadline,
        countdown=countdown(row.next_deadline, now),
        team={member: staff.get(member, member) for member in row.team.values()},
        case_manager=staff.get(case_manager, case_manager) if case_manager else None,
        readable=stored.readable,
        refused_writes=row.refused_writes,
        patient=person_cells(viewer, stored),
    )
