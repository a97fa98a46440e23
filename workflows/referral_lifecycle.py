"""The referral's course, phase by phase (ARCHITECTURE.md lifecycle): screening, the acceptance's writes,
treatment until discharge or cancellation, aftercare's follow-ups. ``ReferralWorkflow.run`` walks it."""

from __future__ import annotations

from datetime import date, timedelta

from temporalio import workflow

from workflows.referral_base import end_of
from workflows.referral_writes import ReferralWrites

with workflow.unsafe.imports_passed_through():
    from referral_service.domain.careteam import assign_team
    from referral_service.domain.deadlines import first_session_deadline
    from referral_service.domain.discharge import DischargeReason
    from referral_service.domain.lifecycle import TEAM_PHASES, Phase
    from referral_service.domain.program_day import Today
    from referral_service.domain.referrer_task import Cancellation
    from workflows.referral_types import FollowUp, ScreeningDecisionInput, StartReferralInput


class ReferralLifecycle(ReferralWrites):
    """The phases' waits and moves; the messages that drive them are ``ReferralWorkflow``'s."""

    async def _screen(self) -> None:
        """Wait for accept / decline / waitlist; flag the referral when the response deadline passes."""
        response_due = self._s.received_at + timedelta(hours=self._s.program.deadlines.response_hours)
        self._set_deadline(response_due)
        response_overdue = "response" in self._s.overdue
        while self._s.phase in (Phase.SCREENING, Phase.WAITLISTED):
            watch = self._s.phase == Phase.SCREENING and not response_overdue
            decided = await self._wait(
                lambda: self._decision is not None or self._cancel is not None,
                until=response_due if watch else None,
            )
            if self._cancel is not None:
                await self._cancelled()
                return
            if not decided:
                self._flag_overdue("response")
                response_overdue = True
                continue
            decision, self._decision = self._decision, None
            assert decision is not None
            self._applying = True
            await self._apply_decision(decision)
            if decision.decision == "accept":
                await self._start_treatment()
            self._applying = False

    async def _apply_decision(self, decision: ScreeningDecisionInput) -> None:
        if decision.decision == "waitlist":
            await self._move(Phase.WAITLISTED, "waitlisted")
            await self._tell_referrer()
            self._set_deadline(None)
        elif decision.decision == "decline":
            self._s.decline_reason = decision.decline_reason
            await self._move(Phase.DECLINED, "declined", str(decision.decline_reason))
            await self._tell_referrer()
        else:
            self._s.track_id = decision.track_id
            self._s.intake_at = decision.intake_at
            team = assign_team(self._s.program, str(decision.track_id), decision.caseloads)
            self._s.team = team.model_copy(update={"assigned_at": workflow.now()})
            self._s.team_history.append(self._s.team)
            await self._move(Phase.ACCEPTED, "accepted", f"track {decision.track_id}")

    async def _start_treatment(self) -> None:
        """Write the care team and plan, tell the referrer, and schedule intake."""
        # An acceptance entered after the intake it scheduled (late data entry) starts the plan at that intake.
        # Both are the program's days: its clinical date rules hold a discharge to this start.
        today = self._today()
        intake = self._s.intake_at
        self._s.treatment_start = min(today.day, Today.at(intake, today.zone).day) if intake else today.day
        # Referrals accepted before this change wrote the four resources one by one, the Task twice.
        if workflow.patched("acceptance-transaction"):
            await self._schedule_intake()
            if not await self._write_acceptance():  # the EHR takes no transaction: each resource on its own
                await self._write_team()
                await self._write_plan(status="active")
                await self._tell_referrer()
            return
        await self._write_team()
        await self._write_plan(status="active")
        await self._tell_referrer()
        await self._schedule_intake()
        await self._tell_referrer()

    async def _schedule_intake(self) -> None:
        """Intake scheduled: the first-session deadline set (when the hospital discharge date is known)."""
        if (due := self._first_session_due()) is not None:
            self._set_deadline(end_of(due, self._s.program.time_zone))
        await self._move(
            Phase.INTAKE_SCHEDULED,
            "intake scheduled",
            self._s.intake_at.isoformat() if self._s.intake_at else "",
        )

    async def _treat(self) -> None:
        """Sessions arrive through updates until discharge or cancellation; watch the first-session deadline."""
        while self._s.discharge is None and self._cancel is None:
            due = self._s.next_deadline if self._s.phase == Phase.INTAKE_SCHEDULED else None
            progressed = await self._wait(
                lambda: (
                    self._s.discharge is not None
                    or self._cancel is not None
                    or workflow.info().is_continue_as_new_suggested()
                ),
                until=due,
            )
            if not progressed:
                self._flag_overdue("first session")
                self._set_deadline(None)
            elif workflow.info().is_continue_as_new_suggested() and self._cancel is None:
                await workflow.wait_condition(workflow.all_handlers_finished)
                await workflow.wait_condition(self._row_current)
                workflow.continue_as_new(
                    StartReferralInput(
                        key=self._s.key,
                        referral=self._s.referral,
                        program=self._s.program,
                        received_at=self._s.received_at,
                        resume=self._s,
                    )
                )
        if self._cancel is not None:
            await self._cancelled()
            return
        await self._discharged()

    async def _discharged(self) -> None:
        discharge = self._s.discharge
        assert discharge is not None
        transferred = discharge.reason == DischargeReason.TRANSFERRED
        await self._team_settled()
        await self._write_plan(status="completed", end=discharge.date)
        await self._write_team(active=False)
        await self._tell_referrer()  # completed, or cancelled when no session was attended
        if transferred:
            await self._move(Phase.TRANSFERRED, "transferred", str(discharge.destination_level or ""))
            return
        await self._move(Phase.DISCHARGED, "discharged", str(discharge.reason))

    async def _aftercare(self) -> None:
        """Follow-up checkpoints after program discharge; each waits for its result or its due date."""
        discharge = self._s.discharge
        assert discharge is not None
        if not self._s.follow_ups:
            self._s.follow_ups = [
                FollowUp(day=day, due=discharge.date + timedelta(days=day))
                for day in self._s.program.deadlines.follow_up_days
            ]
            await self._write_aftercare_plan(status="active")
        await self._move(Phase.AFTERCARE, "aftercare started")
        for follow_up in self._s.follow_ups:
            due = end_of(follow_up.due, self._s.program.time_zone)
            self._set_deadline(due)
            if not await self._wait(lambda f=follow_up: f.reached is not None, until=due):
                self._flag_overdue(f"follow-up day {follow_up.day}")
        # Referrals recorded before this change closed without completing their aftercare plan.
        if workflow.patched("complete-aftercare-plan"):
            await self._write_aftercare_plan(status="completed")
        self._set_deadline(None)
        await self._move(Phase.CLOSED, "closed")

    async def _cancelled(self) -> None:
        assert self._cancel is not None
        self._s.cancellation = Cancellation(reason=self._cancel.reason, requested=self._cancel.requested)
        if self._cancel.requested:  # BSeR: the request is acknowledged before it is confirmed
            await self._tell_referrer()
        if self._s.phase in TEAM_PHASES:
            await self._team_settled()
            await self._write_plan(status="revoked", end=workflow.now().date())
            await self._write_team(active=False)
        self._s.cancellation = self._s.cancellation.model_copy(update={"confirmed": True})
        await self._tell_referrer()
        self._set_deadline(None)
        await self._move(Phase.CANCELLED, "cancelled", self._cancel.reason)

    async def _team_settled(self) -> None:
        """Let an in-flight reassignment's writes land before the team is closed, so they cannot reopen it."""
        if self._reassigning:  # never so in histories recorded before reassignment: no new wait to replay
            await workflow.wait_condition(lambda: not self._reassigning)

    def _first_session_due(self) -> date | None:
        """The last day the first session counts for (None without a known hospital discharge date)."""
        discharge = self._s.referral.discharge
        if discharge is None or discharge.discharge_date is None:
            return None
        return first_session_deadline(discharge.discharge_date, self._s.program.deadlines.first_session_days)
