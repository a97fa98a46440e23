"""A referral's read-model row, projected from its workflow state: one pure function, used by the workflow
at every change and by the rebuild (through the workflow's ``row`` query), so both give the same row."""

from __future__ import annotations

from datetime import date

from referral_service.domain.attendance import absence_streak
from referral_service.domain.deadlines import first_session_deadline
from referral_service.domain.lifecycle import ENDED, Phase
from referral_service.domain.measures import FollowUpResult, MeasuredReferral
from referral_service.domain.referral_row import ReferralRow, RowPerson, RowVersion
from workflows.referral_types import ReferralState


def referral_row(state: ReferralState, version: RowVersion) -> ReferralRow:
    attended = [s for s in state.sessions if s.attended]
    referral = state.referral
    patient = referral.patient
    measured = measured_referral(state)
    return ReferralRow(
        key=state.key,
        version=version,
        source_id=referral.source_id,
        phase=str(state.phase),
        ended=state.phase in ENDED,
        track_id=state.track_id,
        referrer=_referrer(state),
        received_at=state.received_at,
        from_setting=referral.discharge.from_setting if referral.discharge else None,
        hospital_discharge=_hospital_discharge(state),
        accepted_on=state.treatment_start,
        first_attended=min(s.date for s in attended) if attended else None,
        program_discharge=state.discharge.date if state.discharge else None,
        sessions_attended=len(attended),
        hours_attended=round(sum(s.minutes for s in attended) / 60, 2),
        absences=sum(1 for s in state.sessions if not s.attended and not s.excused),
        team={str(role): member.id for role, member in state.team.members.items()} if state.team else {},
        next_deadline=state.next_deadline,
        first_session_due=_first_session_due(state) if not attended else None,
        next_follow_up=_next_follow_up(state),
        outreach_due=_outreach_due(state),
        at_risk=state.at_risk,
        overdue=state.overdue,
        refused_writes=len(state.refused),
        possible_duplicates=state.possible_duplicates,
        measures=measured.facts() if measured else None,
        person=RowPerson(
            family=patient.family,
            given=patient.given,
            birth_date=patient.birth_date,
            gender=patient.gender,
            mrn=patient.identifiers[0].value if patient.identifiers else None,
            phone=patient.phone,
        ),
    )


def measured_referral(state: ReferralState) -> MeasuredReferral | None:
    """What the measures read from a snapshot; None unless accepted onto a track with a hospital discharge date."""
    hospital_discharge = _hospital_discharge(state)
    if state.track_id is None or hospital_discharge is None:
        return None
    return MeasuredReferral(
        track_id=state.track_id,
        source_id=state.referral.source_id,
        hospital_discharge=hospital_discharge,
        min_weekly_hours=state.program.track(state.track_id).min_weekly_hours,
        sessions=state.sessions,
        discharge=state.discharge,
        follow_ups=[FollowUpResult(due=f.due, reached=f.reached) for f in state.follow_ups],
    )


def _referrer(state: ReferralState) -> str | None:
    """Who referred, by name: the practitioner and their organisation ("Dr. A B, Lakeside"), either alone."""
    referral = state.referral
    names = [ref.display for ref in (referral.requester, referral.requester_organization) if ref and ref.display]
    return ", ".join(dict.fromkeys(names)) or None


def _hospital_discharge(state: ReferralState) -> date | None:
    discharge = state.referral.discharge
    return discharge.discharge_date if discharge else None


def _first_session_due(state: ReferralState) -> date | None:
    """While no session is attended and the referral is open: the last day its first session counts for."""
    hospital_discharge = _hospital_discharge(state)
    if hospital_discharge is None or state.phase in ENDED:
        return None
    return first_session_deadline(hospital_discharge, state.program.deadlines.first_session_days)


def _next_follow_up(state: ReferralState) -> date | None:
    """In aftercare: the due date of the first follow-up neither recorded nor flagged overdue (a missed one is
    on the row's ``overdue``)."""
    if state.phase != Phase.AFTERCARE:
        return None
    waiting = (f.due for f in state.follow_ups if f.reached is None and f"follow-up day {f.day}" not in state.overdue)
    return next(waiting, None)


def _outreach_due(state: ReferralState) -> date | None:
    """While the absences since the last attended session reach the program's threshold (the workflow asked the
    referring side for outreach): the day of the last one missed."""
    if state.phase in ENDED:
        return None
    streak = absence_streak(state.sessions)
    return streak[-1].date if len(streak) >= state.program.deadlines.absence_threshold else None
