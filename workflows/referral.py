"""``ReferralWorkflow``: one referral from intake to closure, phase by phase (ARCHITECTURE.md lifecycle).

Deterministic orchestration only: time from ``workflow.now()``, rules from ``referral_service.domain``,
every EHR write in an activity. Case managers drive it through validated updates; the ``snapshot`` query
returns the whole state; phase, track, source, at-risk and next deadline are search attributes (no PHI).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from referral_service.activities.read_model import ReadModelActivities
    from referral_service.activities.writeback import (
        REFUSED,
        TASK_OUTPUT_TYPES,
        WRITE_INPUTS,
        RefusalReport,
        WritebackActivities,
        WriteCarePlanInput,
        WriteCareTeamInput,
        WriteEncounterInput,
        WriteObservationInput,
        WriteOutreachInput,
        WriteTaskInput,
    )
    from referral_service.domain.assessment import score_problem
    from referral_service.domain.attendance import absence_streak, is_at_risk
    from referral_service.domain.careteam import ReassignmentRefused, TeamUnavailable, assign_team, reassign
    from referral_service.domain.clinical_dates import Breach, assessment_breach, discharge_breach, session_breach
    from referral_service.domain.deadlines import first_session_deadline
    from referral_service.domain.discharge import DischargeReason
    from referral_service.domain.ehr_writes import EhrWrite
    from referral_service.domain.lifecycle import (
        ASSESSABLE,
        DECIDABLE,
        TEAM_PHASES,
        ImpossibleTransition,
        Phase,
        cancellable,
        check_transition,
    )
    from referral_service.domain.metric_names import DEADLINE_ESCALATIONS, EHR_WRITES_REFUSED, PHASE_ENTERED
    from referral_service.domain.program import StaffMember
    from referral_service.domain.program_day import Today, time_zone
    from referral_service.domain.referral_row import ReferralRow, RowVersion
    from referral_service.domain.referrer_task import Cancellation, can_transition
    from workflows import search_attributes
    from workflows.referral_row import referral_row
    from workflows.referral_types import (
        CancelInput,
        DischargeInput,
        FollowUp,
        FollowUpInput,
        ReassignTeamInput,
        RecordAssessmentInput,
        RecordSessionInput,
        ReferralState,
        RefusedWrite,
        RetryWritesResult,
        ScreeningDecisionInput,
        StartReferralInput,
        TimelineEntry,
    )

EHR_WRITE_TIMEOUT = timedelta(seconds=60)
# The read-model row is retried until the service database takes it; the referral goes on meanwhile.
ROW_TIMEOUT = timedelta(seconds=30)
ROW_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=1)
)
# Rows are compared without their version: a change is a change of content.
UNVERSIONED = RowVersion(at=datetime(1970, 1, 1, tzinfo=UTC), event=0)
# A failing EHR gets retries with backoff for as long as it takes; the referral waits durably meanwhile.
EHR_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=10)
)
# The ApplicationError type of a refusal under a clinical date rule (the API answers it 422, others 409).
CLINICAL_DATE_ERROR = "ClinicalDateRule"
# The order refused writes are sent again: what later resources reference (team, scores, sessions) first, the
# referrer's Task, which lists the plans and sessions, last.
RETRY_ORDER = (
    "write_care_team",
    "write_observation",
    "write_encounter",
    "write_outreach_task",
    "write_care_plan",
    "write_task",
)


def task_request(state: ReferralState) -> WriteTaskInput:
    """The referrer's Task as the referral stands: what the workflow writes (``GET /fhir/Task`` reads the same)."""
    told = state.referrer_task()
    return WriteTaskInput(
        key=f"{state.key}/task",
        referral=state.referral,
        program=state.program,
        status=told.status,
        business_status=told.business_status,
        reason=told.reason,
        outputs=state.task_outputs(),
        authored_on=state.received_at,
    )


def _staff_id(member: StaffMember | None) -> str:
    return member.id if member else "nobody"


def _date_refusal(breach: Breach) -> ApplicationError:
    return ApplicationError(str(breach), type=CLINICAL_DATE_ERROR)


def _end_of(day: date, zone: str) -> datetime:
    """A deadline falling on ``day`` (a program's day) passes at the end of that day in the program's zone: in
    UTC's, a follow-up due on a New York day would pass at 7 pm there, before the day's last calls."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=time_zone(zone)).astimezone(UTC)


@workflow.defn
class ReferralWorkflow:
    @workflow.init
    def __init__(self, start: StartReferralInput) -> None:
        self._s = start.resume or ReferralState(
            key=start.key,
            referral=start.referral,
            program=start.program,
            received_at=start.received_at,
            possible_duplicates=start.possible_duplicates,
        )
        self._decision: ScreeningDecisionInput | None = None
        self._applying = False  # a decision taken from ``_decision`` whose effects are still being written
        self._cancel: CancelInput | None = None
        self._reassigning = False  # a reassignment whose CareTeam and CarePlan writes are in flight
        self._retrying = False  # refused writes being sent again (``retry_writes``)
        # The search-attribute values last upserted by this run (None: none yet, so the first always goes).
        self._published: tuple[str, str, bool, str | None, datetime | None, int] | None = None
        # The read-model row: the last one written, and the one the state now gives (``_row_changed``).
        self._row_sent: ReferralRow | None = None
        self._row_due: ReferralRow | None = None
        self._projector: asyncio.Task[None] | None = None  # kept: a task nobody holds may be collected

    # ---- the lifecycle -------------------------------------------------------------------------------

    @workflow.run
    async def run(self, start: StartReferralInput) -> ReferralState:
        # Histories recorded before the read model replay without it (a rebuild gives their rows).
        if workflow.patched("read-model-row"):
            self._projector = asyncio.create_task(self._project())
        if start.resume is None:
            await self._move(Phase.RECEIVED, "referral received")
            if self._s.possible_duplicates:  # state only, no command: recorded histories still replay
                self._s.timeline.append(
                    TimelineEntry(
                        at=workflow.now(),
                        event="possible duplicate patient",
                        detail=", ".join(self._s.possible_duplicates),
                    )
                )
            await self._tell_referrer()
            await self._move(Phase.SCREENING, "screening started")
        phase = self._s.phase
        if phase in (Phase.SCREENING, Phase.WAITLISTED):
            await self._screen()
        if self._s.phase in (Phase.INTAKE_SCHEDULED, Phase.IN_TREATMENT):
            await self._treat()
        if self._s.phase == Phase.DISCHARGED:
            await self._aftercare()
        # A write the EHR refused stays retryable after the story ends: the referral waits for someone to send it
        # again (none in histories recorded before refusals were kept, so nothing new to replay).
        await workflow.wait_condition(lambda: not self._s.refused and workflow.all_handlers_finished())
        await workflow.wait_condition(self._row_current)
        return self._s

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
        await self._write_team()
        await self._write_plan(status="active")
        await self._tell_referrer()
        if (due := self._first_session_due()) is not None:
            self._set_deadline(_end_of(due, self._s.program.time_zone))
        await self._move(
            Phase.INTAKE_SCHEDULED,
            "intake scheduled",
            self._s.intake_at.isoformat() if self._s.intake_at else "",
        )
        await self._tell_referrer()

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
            due = _end_of(follow_up.due, self._s.program.time_zone)
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

    # ---- case-manager messages ---------------------------------------------------------------------

    @workflow.query
    def snapshot(self) -> ReferralState:
        return self._s

    @workflow.query
    def row(self) -> ReferralRow:
        """The read-model row as the referral stands now (what a rebuild writes)."""
        return referral_row(self._s, RowVersion(at=workflow.now(), event=workflow.info().get_current_history_length()))

    # ---- the read model ----------------------------------------------------------------------------

    async def _project(self) -> None:
        """After every change, whatever made it (an update, a timer, an activity's answer), the row as the
        referral now stands goes to the read model; changes made while one is being written go in the next."""
        while True:
            await workflow.wait_condition(self._row_changed)
            due = self._row_due
            assert due is not None  # set by ``_row_changed``
            version = RowVersion(at=workflow.now(), event=workflow.info().get_current_history_length())
            await workflow.execute_local_activity_method(
                ReadModelActivities.record_referral_row,
                due.model_copy(update={"version": version}),
                start_to_close_timeout=ROW_TIMEOUT,
                retry_policy=ROW_RETRY,
            )
            self._row_sent = due

    def _row_changed(self) -> bool:
        self._row_due = referral_row(self._s, UNVERSIONED)
        return self._row_due != self._row_sent

    def _row_current(self) -> bool:
        """Nothing left for the read model (the run may end, or continue as new)."""
        return self._projector is None or not self._row_changed()

    @workflow.update
    async def decide(self, decision: ScreeningDecisionInput) -> ReferralState:
        """Accept, decline or waitlist; returns the state once the decision has been applied."""
        self._decision = decision
        # Return once applied and the referrer told: an accepted referral has its team and plan written.
        await workflow.wait_condition(lambda: self._decision is None and not self._applying)
        return self._s

    @decide.validator
    def _validate_decide(self, decision: ScreeningDecisionInput) -> None:
        # A decision may arrive while the receipt is still being written; screening picks it up next.
        if self._s.phase not in DECIDABLE or self._decision is not None:
            raise ApplicationError(f"no screening decision is possible in phase {self._s.phase}")
        if decision.decision == "decline" and decision.decline_reason is None:
            raise ApplicationError("a decline needs a coded reason (decline_reason)")
        if decision.decision == "accept":
            self._check_accept(decision)

    def _check_accept(self, decision: ScreeningDecisionInput) -> None:
        track_ids = [track.id for track in self._s.program.tracks]
        if decision.track_id not in track_ids:
            raise ApplicationError(f"accept needs a track of this program: one of {track_ids}")
        try:
            assign_team(self._s.program, decision.track_id, decision.caseloads)
        except TeamUnavailable as error:
            raise ApplicationError(str(error)) from None

    @workflow.update
    async def record_session(self, update: RecordSessionInput) -> ReferralState:
        """Record one session; an attended one becomes an Encounter in the EHR."""
        session = update.session
        self._s.sessions = [s for s in self._s.sessions if s.session_id != session.session_id] + [session]
        self._s.timeline.append(
            TimelineEntry(
                at=workflow.now(),
                event="session attended" if session.attended else "session missed",
                detail=f"{session.kind} {session.date.isoformat()}",
            )
        )
        if session.attended:
            if self._s.phase == Phase.INTAKE_SCHEDULED:
                await self._move(Phase.IN_TREATMENT, "first session attended")
                self._set_deadline(None)
                await self._tell_referrer()
            self._clear_first_session_flag(session.date)
            await self._write(
                WritebackActivities.write_encounter,
                WriteEncounterInput(
                    key=f"{self._s.key}/encounter/{session.session_id}",
                    referral=self._s.referral,
                    program=self._s.program,
                    session=session,
                ),
            )
        self._update_risk()
        await self._request_outreach()
        return self._s

    def _clear_first_session_flag(self, attended_on: date) -> None:
        """Attendance is often entered days later: a session attended within the deadline lifts the flag the
        deadline raised before it was recorded."""
        due = self._first_session_due()
        if "first session" not in self._s.overdue or due is None or attended_on > due:
            return
        self._s.overdue.remove("first session")
        self._s.timeline.append(
            TimelineEntry(at=workflow.now(), event="deadline met after all", detail="first session, recorded late")
        )

    def _first_session_due(self) -> date | None:
        """The last day the first session counts for (None without a known hospital discharge date)."""
        discharge = self._s.referral.discharge
        if discharge is None or discharge.discharge_date is None:
            return None
        return first_session_deadline(discharge.discharge_date, self._s.program.deadlines.first_session_days)

    async def _request_outreach(self) -> None:
        """Once per absence streak that reaches the threshold: ask the referring side to reach out."""
        streak = absence_streak(self._s.sessions)
        if len(streak) < self._s.program.deadlines.absence_threshold:
            return
        key = f"{self._s.key}/outreach/{streak[0].session_id}"
        # Referrals recorded before this change set at-risk without an outreach Task.
        if key in self._s.writes or not workflow.patched("outreach-task"):
            return
        self._s.timeline.append(
            TimelineEntry(at=workflow.now(), event="outreach requested", detail=f"{len(streak)} sessions missed")
        )
        await self._write(
            WritebackActivities.write_outreach_task,
            WriteOutreachInput(
                key=key,
                referral=self._s.referral,
                program=self._s.program,
                missed=len(streak),
                authored_on=workflow.now(),
            ),
        )

    @record_session.validator
    def _validate_session(self, update: RecordSessionInput) -> None:
        if self._s.phase not in (Phase.INTAKE_SCHEDULED, Phase.IN_TREATMENT):
            raise ApplicationError(f"sessions can only be recorded in treatment, not in phase {self._s.phase}")
        hospital = self._s.referral.discharge
        breach = session_breach(
            update.session,
            today=self._today(),
            hospital_discharge=hospital.discharge_date if hospital else None,
            program_discharge=self._s.discharge.date if self._s.discharge else None,  # one being applied
        )
        if breach is not None:
            raise _date_refusal(breach)

    # A new update: recorded histories hold none, so its commands need no ``patched`` guard to replay.
    @workflow.update
    async def record_assessment(self, update: RecordAssessmentInput) -> ReferralState:
        """Record a PHQ-9, GAD-7, AUDIT-C or C-SSRS score; it becomes an Observation in the EHR."""
        assessment = update.assessment
        kept = [a for a in self._s.assessments if a.assessment_id != assessment.assessment_id]
        self._s.assessments = [*kept, assessment]
        self._s.timeline.append(
            TimelineEntry(
                at=workflow.now(),
                event="assessment recorded",
                detail=f"{assessment.instrument} {assessment.date.isoformat()}",
            )
        )
        await self._write(
            WritebackActivities.write_observation,
            WriteObservationInput(
                key=f"{self._s.key}/observation/{assessment.assessment_id}",
                referral=self._s.referral,
                program=self._s.program,
                assessment=assessment,
            ),
        )
        return self._s

    @record_assessment.validator
    def _validate_assessment(self, update: RecordAssessmentInput) -> None:
        if self._s.phase not in ASSESSABLE:
            raise ApplicationError(
                f"assessments are recorded from acceptance to discharge, not in phase {self._s.phase}"
            )
        problem = score_problem(update.assessment)
        if problem is not None:
            raise ApplicationError(problem)
        breach = assessment_breach(update.assessment.date, today=self._today())
        if breach is not None:
            raise _date_refusal(breach)

    @workflow.update
    async def discharge(self, update: DischargeInput) -> ReferralState:
        """Discharge from the program with a coded reason; returns once the EHR has been told."""
        self._s.discharge = update.discharge
        await workflow.wait_condition(lambda: self._s.phase not in (Phase.INTAKE_SCHEDULED, Phase.IN_TREATMENT))
        return self._s

    @discharge.validator
    def _validate_discharge(self, update: DischargeInput) -> None:
        # Checked first: once applied, the phase check below would only say "cannot go from aftercare to ...".
        if self._s.discharge is not None:
            done = self._s.discharge
            raise ApplicationError(
                f"this referral was already discharged ({done.reason}, {done.date.isoformat()});"
                f" it is in phase {self._s.phase}"
            )
        self._require_transition(
            Phase.TRANSFERRED if update.discharge.reason == DischargeReason.TRANSFERRED else Phase.DISCHARGED
        )
        breach = discharge_breach(
            update.discharge.date,
            today=self._today(),
            treatment_start=self._s.treatment_start,
            sessions=self._s.sessions,
        )
        if breach is not None:
            raise _date_refusal(breach)

    @workflow.update
    async def record_follow_up(self, update: FollowUpInput) -> ReferralState:
        for follow_up in self._s.follow_ups:
            if follow_up.day == update.day:
                follow_up.reached, follow_up.note = update.reached, update.note
        self._s.timeline.append(
            TimelineEntry(
                at=workflow.now(),
                event=f"follow-up day {update.day}",
                detail="reached" if update.reached else "not reached",
            )
        )
        return self._s

    @record_follow_up.validator
    def _validate_follow_up(self, update: FollowUpInput) -> None:
        if self._s.phase != Phase.AFTERCARE:
            raise ApplicationError(f"follow-ups are recorded in aftercare, not in phase {self._s.phase}")
        if update.day not in [f.day for f in self._s.follow_ups]:
            raise ApplicationError(f"no follow-up checkpoint on day {update.day}")

    # A new update: recorded histories hold none, so its commands need no ``patched`` guard to replay.
    @workflow.update
    async def reassign_team(self, update: ReassignTeamInput) -> ReferralState:
        """Give roles to other roster members: the CareTeam is rewritten and the CarePlan revised; the previous
        assignment stays in ``team_history`` and the timeline says who changed. Nothing changes for roles
        already held by the member named (so the same request twice writes once)."""
        assert self._s.team is not None
        changed = reassign(self._s.program, self._s.team, update.members, update.caseloads)
        if not changed:
            return self._s
        previous = self._s.team.members
        self._s.team = self._s.team.model_copy(
            update={"members": {**previous, **changed}, "assigned_at": workflow.now()}
        )
        self._s.team_history.append(self._s.team)
        self._s.timeline.append(
            TimelineEntry(
                at=workflow.now(),
                event="care team reassigned",
                detail=", ".join(f"{role}: {_staff_id(previous.get(role))} -> {m.id}" for role, m in changed.items()),
            )
        )
        self._reassigning = True
        try:
            await self._write_team()
            await self._write_plan(status="active")
        finally:
            self._reassigning = False
        return self._s

    @reassign_team.validator
    def _validate_reassign(self, update: ReassignTeamInput) -> None:
        if self._s.team is None or self._s.phase not in TEAM_PHASES:
            raise ApplicationError(
                f"the care team is reassigned between acceptance and discharge, not in phase {self._s.phase}"
            )
        if self._s.discharge is not None or self._cancel is not None:
            raise ApplicationError("this referral is being discharged or cancelled; its care team is closing")
        if self._reassigning:
            raise ApplicationError("another reassignment is being written to the EHR; retry in a moment")
        try:
            reassign(self._s.program, self._s.team, update.members, update.caseloads)
        except ReassignmentRefused as error:
            raise ApplicationError(str(error)) from None

    # A new update: recorded histories hold none, so its commands need no ``patched`` guard to replay.
    @workflow.update
    async def retry_writes(self) -> RetryWritesResult:
        """Send every write the EHR refused again, as it stands now (the Task as the referral is now, plans
        referencing what the EHR has since taken); a success moves to ``writes``, a refusal stays refused."""
        self._retrying = True
        try:
            keys = sorted(self._s.refused, key=lambda key: RETRY_ORDER.index(self._s.refused[key].activity))
            succeeded: list[EhrWrite] = []
            for key in keys:
                refused = self._s.refused.get(key)
                if refused is None:  # the referral's own course wrote it meanwhile
                    continue
                write = await self._write(getattr(WritebackActivities, refused.activity), self._resend(refused))
                if write is not None:
                    succeeded.append(write)
            task_key = f"{self._s.key}/task"
            if task_key not in keys and any(w.resource_type in TASK_OUTPUT_TYPES for w in succeeded):
                await self._write(WritebackActivities.write_task, task_request(self._s))  # to list them now
        finally:
            self._retrying = False
        return RetryWritesResult(
            succeeded=succeeded, still_refused=[self._s.refused[key] for key in keys if key in self._s.refused]
        )

    @retry_writes.validator
    def _validate_retry_writes(self) -> None:
        if not self._s.refused:
            raise ApplicationError("the EHR has refused no write of this referral: there is nothing to retry")
        if self._retrying:
            raise ApplicationError("the refused writes are being sent again already; wait for that to finish")

    @workflow.signal
    def cancel(self, request: CancelInput) -> None:
        """The referrer revoked the referral. A signal, so it is accepted even while no worker runs."""
        if cancellable(self._s.phase):
            self._cancel = request

    # ---- helpers -----------------------------------------------------------------------------------

    async def _team_settled(self) -> None:
        """Let an in-flight reassignment's writes land before the team is closed, so they cannot reopen it."""
        if self._reassigning:  # never so in histories recorded before reassignment: no new wait to replay
            await workflow.wait_condition(lambda: not self._reassigning)

    def _today(self) -> Today:
        """The program's day by the workflow's clock (the clinical date rules' "today")."""
        return Today.at(workflow.now(), self._s.program.time_zone)

    def _require_transition(self, to: Phase) -> None:
        try:
            check_transition(self._s.phase, to)
        except ImpossibleTransition as error:
            raise ApplicationError(str(error)) from None

    async def _move(self, to: Phase, event: str, detail: str = "") -> None:
        if to != self._s.phase:
            check_transition(self._s.phase, to)
        self._s.phase = to
        self._s.timeline.append(TimelineEntry(at=workflow.now(), event=event, detail=detail))
        self._publish()
        if to != Phase.SCREENING:  # every referral passes through screening; the outcomes are what matter
            self._count(PHASE_ENTERED, phase=str(to))

    def _set_deadline(self, due: datetime | None) -> None:
        self._s.next_deadline = due
        self._publish()

    def _flag_overdue(self, what: str) -> None:
        self._s.overdue.append(what)
        self._s.at_risk = True
        self._s.timeline.append(TimelineEntry(at=workflow.now(), event="deadline passed", detail=what))
        self._publish()
        self._count(DEADLINE_ESCALATIONS, deadline=what)

    def _count(self, counter: tuple[str, str], **labels: str) -> None:
        """One more on a Prometheus counter; the SDK's workflow meter records nothing while replaying."""
        name, description = counter
        workflow.metric_meter().create_counter(name, description).add(
            1, {"source": self._s.referral.source_id, **labels}
        )

    def _update_risk(self) -> None:
        threshold = self._s.program.deadlines.absence_threshold
        self._s.at_risk = bool(self._s.overdue) or is_at_risk(self._s.sessions, threshold)
        self._publish()

    def _publish(self) -> None:
        """Search attributes: codes and ids only, never patient data.

        An upsert changes only the attributes it lists, so the patient-match keys set at start stay. One
        whose values are those already published is skipped: each upsert is a history event and a write to
        the visibility store, and most sessions change nothing here (bench/RESULTS.md, P2).
        """
        values = (
            str(self._s.phase),
            self._s.referral.source_id,
            self._s.at_risk,
            self._s.track_id,
            self._s.next_deadline,
            len(self._s.refused),
        )
        # Histories recorded before this change upserted on every call: they replay through the unpatched path.
        if values == self._published and workflow.patched("publish-changes-only"):
            return
        # The refused-writes count goes up only once there has been a refusal, so the upserts of histories
        # recorded before refusals were kept (none had one) stay exactly as they were.
        flag_refusals = bool(values[5]) or bool(self._published and self._published[5])
        self._published = values
        phase, source, at_risk, track, deadline, refused = values
        workflow.upsert_search_attributes(
            [
                search_attributes.PHASE.value_set(phase),
                search_attributes.SOURCE.value_set(source),
                search_attributes.AT_RISK.value_set(at_risk),
                search_attributes.TRACK.value_set(track) if track else search_attributes.TRACK.value_unset(),
                search_attributes.NEXT_DEADLINE.value_set(deadline)
                if deadline
                else search_attributes.NEXT_DEADLINE.value_unset(),
                *([search_attributes.REFUSED_WRITES.value_set(refused)] if flag_refusals else []),
            ]
        )

    async def _wait(self, condition: Any, *, until: datetime | None) -> bool:
        """Wait for ``condition``; False when ``until`` passes first."""
        timeout = None if until is None else max(until - workflow.now(), timedelta(0))
        try:
            await workflow.wait_condition(condition, timeout=timeout)
        except TimeoutError:
            return False
        return True

    async def _tell_referrer(self) -> None:
        """Update the closed-loop Task (one Task per referral, updated in place) to what the referral's state says,
        along FHIR's Task state machine only: a move it does not allow is a bug here, so it fails loudly instead
        of reaching the EHR."""
        request = task_request(self._s)
        if not can_transition(self._s.task_status, request.status):
            raise ApplicationError(f"Task cannot go from {self._s.task_status} to {request.status}", non_retryable=True)
        self._s.task_status = request.status
        await self._write(WritebackActivities.write_task, request)

    async def _write_team(self, *, active: bool = True) -> None:
        assert self._s.team is not None
        await self._write(
            WritebackActivities.write_care_team,
            WriteCareTeamInput(
                key=f"{self._s.key}/careteam",
                referral=self._s.referral,
                program=self._s.program,
                team=self._s.team,
                active=active,
                start=self._s.treatment_start or workflow.now().date(),
            ),
        )

    async def _write_plan(self, *, status: str, end: date | None = None) -> None:
        await self._write(
            WritebackActivities.write_care_plan,
            WriteCarePlanInput(
                key=f"{self._s.key}/careplan",
                referral=self._s.referral,
                program=self._s.program,
                track_id=str(self._s.track_id),
                status=status,
                start=self._s.treatment_start or workflow.now().date(),
                end=end,
                team=self._s.team,
                **self._plan_links(),
            ),
        )

    def _plan_links(self, *, treatment: bool = True) -> dict[str, Any]:
        """What a plan references in the EHR as it stands: the CareTeam, and (the treatment plan) the scores."""
        links: dict[str, Any] = {"care_team": self._s.writes.get(f"{self._s.key}/careteam")}
        if treatment:
            links["assessments"] = [w for w in self._s.writes.values() if w.resource_type == "Observation"]
        return links

    async def _write_aftercare_plan(self, *, status: str) -> None:
        assert self._s.discharge is not None
        await self._write(
            WritebackActivities.write_care_plan,
            WriteCarePlanInput(
                key=f"{self._s.key}/aftercare-plan",
                referral=self._s.referral,
                program=self._s.program,
                track_id=str(self._s.track_id),
                status=status,
                start=self._s.discharge.date,
                follow_up_days=[f.day for f in self._s.follow_ups],
                **self._plan_links(treatment=False),
            ),
        )

    async def _write(self, activity: Callable[[Any, Any], Awaitable[EhrWrite]], request: Any) -> EhrWrite | None:
        """One write-back activity; a write the EHR refuses for good is recorded (None) and the referral goes on."""
        try:
            write = await workflow.execute_activity_method(
                activity,
                request,
                start_to_close_timeout=EHR_WRITE_TIMEOUT,
                retry_policy=EHR_RETRY,
            )
        except ActivityError as error:
            cause = error.cause
            if not (isinstance(cause, ApplicationError) and cause.type == REFUSED and cause.details):
                raise
            self._refused(activity.__name__, request, RefusalReport.model_validate(cause.details[0]))
            return None
        self._s.writes[write.key] = write
        if self._s.refused.pop(write.key, None) is not None:
            self._s.timeline.append(
                TimelineEntry(at=workflow.now(), event="refused write accepted", detail=write.resource_type)
            )
            self._publish()
        return write

    def _refused(self, activity: str, request: Any, report: RefusalReport) -> None:
        """Record a refusal (replacing an older one of the same write), flag the referral and count it."""
        refusal = report.refusal
        self._s.refused[request.key] = RefusedWrite(
            **refusal.model_dump(),
            key=request.key,
            at=workflow.now(),
            activity=activity,
            request=request.model_dump(mode="json", exclude={"referral", "program"}),
            fallback=report.fallback,
            fallback_refusal=report.fallback_refusal,
        )
        detail = f"{refusal.resource_type}: HTTP {refusal.status} {', '.join(refusal.codes) or refusal.summary}"
        if report.fallback is not None:
            self._s.writes[request.key] = report.fallback
            detail += "; written as a DocumentReference note instead"
        elif report.fallback_refusal is not None:
            detail += f"; the DocumentReference note instead was refused too (HTTP {report.fallback_refusal.status})"
        self._s.timeline.append(TimelineEntry(at=workflow.now(), event="EHR refused a write", detail=detail))
        self._publish()
        for refused in (refusal, report.fallback_refusal):
            if refused is not None:
                self._count(EHR_WRITES_REFUSED, resource_type=refused.resource_type)

    def _resend(self, refused: RefusedWrite) -> Any:
        """The refused write's input as the referral stands now."""
        if refused.key == f"{self._s.key}/task":
            return task_request(self._s)
        request = WRITE_INPUTS[refused.activity].model_validate(
            {**refused.request, "referral": self._s.referral, "program": self._s.program}
        )
        if isinstance(request, WriteCarePlanInput):
            request = request.model_copy(update=self._plan_links(treatment=not request.follow_up_days))
        return request
