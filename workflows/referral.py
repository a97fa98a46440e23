"""``ReferralWorkflow``: one referral from intake to closure, phase by phase (ARCHITECTURE.md lifecycle).

Deterministic orchestration only: time from ``workflow.now()``, rules from ``referral_service.domain``,
every EHR write in an activity. This class holds the messages (updates, their validators, the queries, the
signals) and ``run``; the course is ``referral_lifecycle``'s, the writes ``referral_writes``', the bookkeeping
``referral_base``'s. Case managers drive it through validated updates; the ``snapshot`` query
returns the whole state; phase, track, source, at-risk and next deadline are search attributes (no PHI).
"""

from __future__ import annotations

import asyncio
from datetime import date

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.referral_base import date_refusal
from workflows.referral_lifecycle import ReferralLifecycle
from workflows.referral_writes import RETRY_ORDER, task_request

with workflow.unsafe.imports_passed_through():
    from referral_service.activities.write_inputs import (
        WriteEncounterInput,
        WriteObservationInput,
        WriteOutreachInput,
    )
    from referral_service.activities.writeback import TASK_OUTPUT_TYPES, WritebackActivities
    from referral_service.domain.assessment import score_problem
    from referral_service.domain.attendance import absence_streak
    from referral_service.domain.careteam import ReassignmentRefused, TeamUnavailable, assign_team, reassign
    from referral_service.domain.clinical_dates import assessment_breach, discharge_breach, session_breach
    from referral_service.domain.discharge import DischargeReason
    from referral_service.domain.ehr_writes import EhrWrite
    from referral_service.domain.lifecycle import ASSESSABLE, DECIDABLE, TEAM_PHASES, Phase, cancellable
    from referral_service.domain.program import StaffMember
    from referral_service.domain.referral_row import ReferralRow, RowVersion
    from referral_service.domain.write_keys import Written, write_key
    from workflows.referral_row import referral_row
    from workflows.referral_types import (
        CancelInput,
        DischargeInput,
        FollowUpInput,
        ReassignTeamInput,
        RecordAssessmentInput,
        RecordSessionInput,
        ReferralState,
        RetryWritesResult,
        ScreeningDecisionInput,
        StartReferralInput,
        TimelineEntry,
        UpdateAnswer,
    )


def _staff_id(member: StaffMember | None) -> str:
    return member.id if member else "nobody"


@workflow.defn
class ReferralWorkflow(ReferralLifecycle):
    @workflow.init
    def __init__(self, start: StartReferralInput) -> None:
        self._s = start.resume or ReferralState(
            key=start.key,
            referral=start.referral,
            program=start.program,
            received_at=start.received_at,
            possible_duplicates=start.possible_duplicates,
        )
        self._decision = None
        self._applying = False
        self._cancel = None
        self._reassigning = False
        self._retrying = False
        self._published = None
        self._row_sent = None
        self._row_due = None
        self._projector = None

    # ---- the lifecycle -------------------------------------------------------------------------------

    @workflow.run
    async def run(self, start: StartReferralInput) -> ReferralState:
        # Histories recorded before the read model replay without it (a rebuild gives their rows).
        if workflow.patched("read-model-row"):
            self._projector = asyncio.create_task(self._project())
        if start.resume is None:
            await self._move(Phase.RECEIVED, "referral received")
            # Findings a start carried (recorded histories); not the state's: a signal in this task noted its own.
            if start.possible_duplicates:
                self._note_duplicates(start.possible_duplicates)
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

    # ---- case-manager messages ---------------------------------------------------------------------

    @workflow.query
    def snapshot(self) -> ReferralState:
        return self._s  # the whole state: a query's answer stays out of the history

    @workflow.query
    def row(self) -> ReferralRow:
        """The read-model row as the referral stands now (what a rebuild writes)."""
        return referral_row(self._s, RowVersion(at=workflow.now(), event=workflow.info().get_current_history_length()))

    @workflow.update
    async def decide(self, decision: ScreeningDecisionInput) -> UpdateAnswer:
        """Accept, decline or waitlist; returns the state once the decision has been applied."""
        self._decision = decision
        # Return once applied and the referrer told: an accepted referral has its team and plan written.
        await workflow.wait_condition(lambda: self._decision is None and not self._applying)
        return UpdateAnswer.of(self._s)

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
    async def record_session(self, update: RecordSessionInput) -> UpdateAnswer:
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
                    key=write_key(self._s.key, Written.ENCOUNTER, session.session_id),
                    referral=self._s.referral.references(),
                    organization=self._s.program.organization,
                    session=session,
                ),
            )
        self._update_risk()
        await self._request_outreach()
        return UpdateAnswer.of(self._s)

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

    async def _request_outreach(self) -> None:
        """Once per absence streak that reaches the threshold: ask the referring side to reach out."""
        streak = absence_streak(self._s.sessions)
        if len(streak) < self._s.program.deadlines.absence_threshold:
            return
        key = write_key(self._s.key, Written.OUTREACH, streak[0].session_id)
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
                referral=self._s.referral.references(),
                organization=self._s.program.organization,
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
            raise date_refusal(breach)

    # A new update: recorded histories hold none, so its commands need no ``patched`` guard to replay.
    @workflow.update
    async def record_assessment(self, update: RecordAssessmentInput) -> UpdateAnswer:
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
                key=write_key(self._s.key, Written.OBSERVATION, assessment.assessment_id),
                referral=self._s.referral.references(),
                organization=self._s.program.organization,
                assessment=assessment,
            ),
        )
        return UpdateAnswer.of(self._s)

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
            raise date_refusal(breach)

    @workflow.update
    async def discharge(self, update: DischargeInput) -> UpdateAnswer:
        """Discharge from the program with a coded reason; returns once the EHR has been told."""
        self._s.discharge = update.discharge
        await workflow.wait_condition(lambda: self._s.phase not in (Phase.INTAKE_SCHEDULED, Phase.IN_TREATMENT))
        return UpdateAnswer.of(self._s)

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
            raise date_refusal(breach)

    @workflow.update
    async def record_follow_up(self, update: FollowUpInput) -> UpdateAnswer:
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
        return UpdateAnswer.of(self._s)

    @record_follow_up.validator
    def _validate_follow_up(self, update: FollowUpInput) -> None:
        if self._s.phase != Phase.AFTERCARE:
            raise ApplicationError(f"follow-ups are recorded in aftercare, not in phase {self._s.phase}")
        if update.day not in [f.day for f in self._s.follow_ups]:
            raise ApplicationError(f"no follow-up checkpoint on day {update.day}")

    # A new update: recorded histories hold none, so its commands need no ``patched`` guard to replay.
    @workflow.update
    async def reassign_team(self, update: ReassignTeamInput) -> UpdateAnswer:
        """Give roles to other roster members: the CareTeam is rewritten and the CarePlan revised; the previous
        assignment stays in ``team_history`` and the timeline says who changed. Nothing changes for roles
        already held by the member named (so the same request twice writes once)."""
        assert self._s.team is not None
        changed = reassign(self._s.program, self._s.team, update.members, update.caseloads)
        if not changed:
            return UpdateAnswer.of(self._s)
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
        return UpdateAnswer.of(self._s)

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
            task_key = write_key(self._s.key, Written.TASK)
            if task_key not in keys and any(w.resource_type in TASK_OUTPUT_TYPES for w in succeeded):
                # to list them now
                await self._write(WritebackActivities.write_task, task_request(self._s, at=workflow.now()))
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
    def flag_possible_duplicates(self, keys: list[str]) -> None:
        """Open referrals that may be the same patient, found by the intake beside this one's start."""
        self._s.possible_duplicates = sorted({*self._s.possible_duplicates, *keys})
        self._note_duplicates(keys)

    @workflow.signal
    def cancel(self, request: CancelInput) -> None:
        """The referrer revoked the referral. A signal, so it is accepted even while no worker runs."""
        if cancellable(self._s.phase):
            self._cancel = request
