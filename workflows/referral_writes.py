"""The referral's writes to the referring EHR: the closed-loop Task, the CareTeam, the plans, and the record of
what the EHR refused (a refusal never ends a referral: it is kept, shown and sent again on request)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from workflows.referral_base import ReferralBase

with workflow.unsafe.imports_passed_through():
    from referral_service.activities.write_inputs import (
        WRITE_INPUTS,
        WriteAcceptanceInput,
        WriteCarePlanInput,
        WriteCareTeamInput,
        WriteTaskInput,
    )
    from referral_service.activities.writeback import REFUSED, RefusalReport, WritebackActivities
    from referral_service.domain.ehr_writes import EhrWrite
    from referral_service.domain.metric_names import EHR_WRITES_REFUSED
    from referral_service.domain.referrer_task import can_transition
    from referral_service.domain.write_keys import Written, write_key
    from workflows.referral_types import ReferralState, RefusedWrite, TimelineEntry

T = TypeVar("T")

EHR_WRITE_TIMEOUT = timedelta(seconds=60)
# A failing EHR gets retries with backoff for as long as it takes; the referral waits durably meanwhile.
EHR_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=10)
)
# A write is first tried once in the worker as a local activity: no workflow task and no dispatch of its own
# (P1, P3 in bench/RESULTS.md). Once and briefly: updates to the referral wait while it runs, and a worker shutting
# down cancels it after its grace period but would retry it in place. A write that fails there gets the durable
# retries above.
LOCAL_TRY = RetryPolicy(maximum_attempts=1)
LOCAL_TRY_TIMEOUT = timedelta(seconds=15)
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


def task_request(state: ReferralState, *, at: datetime) -> WriteTaskInput:
    """The referrer's Task as the referral stands at ``at``: what the workflow writes (``GET /fhir/Task`` reads the
    same)."""
    told = state.referrer_task()
    return WriteTaskInput(
        key=write_key(state.key, Written.TASK),
        referral=state.referral.references(),
        organization=state.program.organization,
        status=told.status,
        business_status=told.business_status,
        reason=told.reason,
        outputs=state.task_outputs(),
        authored_on=state.received_at,
        modified_at=at,
    )


def failure_of(error: FailureError) -> BaseException | None:
    """The activity's own error: an activity's failure wraps it, a local activity's is that error itself."""
    return error.cause if isinstance(error, ActivityError) else error


def refusal_of(error: FailureError) -> RefusalReport | None:
    """The refusal for good a failed write carries, if it is one."""
    failure = failure_of(error)
    if isinstance(failure, ApplicationError) and failure.type == REFUSED and failure.details:
        return RefusalReport.model_validate(failure.details[0])
    return None


class ReferralWrites(ReferralBase):
    """Each write one activity, retried while the EHR fails; a refusal for good recorded, not raised."""

    async def _tell_referrer(self) -> None:
        """Update the closed-loop Task (one Task per referral, updated in place) to what the referral's state says."""
        request = self._next_task()
        self._s.task_status = request.status
        await self._write(WritebackActivities.write_task, request)

    def _next_task(self) -> WriteTaskInput:
        """The referrer's Task as the referral now stands, along FHIR's Task state machine only: a move it does not
        allow is a bug here, so it fails loudly instead of reaching the EHR."""
        request = task_request(self._s, at=workflow.now())
        if not can_transition(self._s.task_status, request.status):
            raise ApplicationError(f"Task cannot go from {self._s.task_status} to {request.status}", non_retryable=True)
        return request

    async def _write_team(self, *, active: bool = True) -> None:
        await self._write(WritebackActivities.write_care_team, self._team_request(active=active))

    async def _write_plan(self, *, status: str, end: date | None = None) -> None:
        await self._write(WritebackActivities.write_care_plan, self._plan_request(status=status, end=end))

    def _team_request(self, *, active: bool) -> WriteCareTeamInput:
        assert self._s.team is not None
        return WriteCareTeamInput(
            key=write_key(self._s.key, Written.CARE_TEAM),
            referral=self._s.referral.references(),
            organization=self._s.program.organization,
            team=self._s.team,
            active=active,
            start=self._s.treatment_start or workflow.now().date(),
        )

    def _plan_request(self, *, status: str, end: date | None = None) -> WriteCarePlanInput:
        return WriteCarePlanInput(
            key=write_key(self._s.key, Written.CARE_PLAN),
            referral=self._s.referral.references(),
            organization=self._s.program.organization,
            track_id=str(self._s.track_id),
            track=self._s.program.track(str(self._s.track_id)),
            status=status,
            start=self._s.treatment_start or workflow.now().date(),
            end=end,
            team=self._s.team,
            **self._plan_links(),
        )

    async def _write_acceptance(self) -> bool:
        """The acceptance's CareTeam, treatment plan and Task (as the referral now stands) as one transaction;
        False when the EHR did not take it as one (the caller writes each on its own)."""
        told = self._next_task()
        answer = await self._send(
            WritebackActivities.write_acceptance,
            WriteAcceptanceInput(
                team=self._team_request(active=True), plan=self._plan_request(status="active"), task=told
            ),
        )
        if not answer.taken:
            return False
        self._s.task_status = told.status
        for write in answer.writes:
            self._taken(write)
        return True

    def _plan_links(self, *, treatment: bool = True) -> dict[str, Any]:
        """What a plan references in the EHR as it stands: the CareTeam, and (the treatment plan) the scores."""
        links: dict[str, Any] = {"care_team": self._s.writes.get(write_key(self._s.key, Written.CARE_TEAM))}
        if treatment:
            links["assessments"] = [w for w in self._s.writes.values() if w.resource_type == "Observation"]
        return links

    async def _write_aftercare_plan(self, *, status: str) -> None:
        assert self._s.discharge is not None
        await self._write(
            WritebackActivities.write_care_plan,
            WriteCarePlanInput(
                key=write_key(self._s.key, Written.AFTERCARE_PLAN),
                referral=self._s.referral.references(),
                organization=self._s.program.organization,
                track_id=str(self._s.track_id),
                status=status,
                start=self._s.discharge.date,
                follow_up_days=[f.day for f in self._s.follow_ups],
                **self._plan_links(treatment=False),
            ),
        )

    async def _write(self, activity: Callable[[Any, Any], Awaitable[EhrWrite]], request: Any) -> EhrWrite | None:
        """One write to the EHR; a write the EHR refuses for good is recorded (None) and the referral goes on."""
        try:
            write = await self._send(activity, request)
        except FailureError as error:
            report = refusal_of(error)
            if report is None:
                raise
            self._refused(activity.__name__, request, report)
            return None
        self._taken(write)
        return write

    async def _send(self, activity: Callable[[Any, Any], Awaitable[T]], request: Any) -> T:
        """One write to the EHR: a local try first, then, if that fails, the durable activity. A failure no retry
        can mend (a refusal for good) is raised from the local try as it is."""
        # Histories recorded before this change ran every write as an activity: they replay through that path.
        if workflow.patched("local-ehr-writes"):
            try:
                return await workflow.execute_local_activity_method(
                    activity, request, start_to_close_timeout=LOCAL_TRY_TIMEOUT, retry_policy=LOCAL_TRY
                )
            except FailureError as error:
                # Anything else (the EHR failing, the try timed out or cancelled by a worker shutting down; the
                # workflow itself is never cancelled) is the durable activity's to retry.
                failure = failure_of(error)
                if isinstance(failure, ApplicationError) and failure.non_retryable:
                    raise
        return await workflow.execute_activity_method(
            activity, request, start_to_close_timeout=EHR_WRITE_TIMEOUT, retry_policy=EHR_RETRY
        )

    def _taken(self, write: EhrWrite) -> None:
        """A write the EHR took: recorded, and no longer refused if it was."""
        self._s.writes[write.key] = write
        if self._s.refused.pop(write.key, None) is not None:
            self._s.timeline.append(
                TimelineEntry(at=workflow.now(), event="refused write accepted", detail=write.resource_type)
            )
            self._publish()

    def _refused(self, activity: str, request: Any, report: RefusalReport) -> None:
        """Record a refusal (replacing an older one of the same write), flag the referral and count it."""
        refusal = report.refusal
        self._s.refused[request.key] = RefusedWrite(
            **refusal.model_dump(),
            key=request.key,
            at=workflow.now(),
            activity=activity,
            request=request.model_dump(mode="json", exclude={"referral", "organization", "track"}),
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
        if refused.key == write_key(self._s.key, Written.TASK):
            return task_request(self._s, at=workflow.now())
        request = WRITE_INPUTS[refused.activity].model_validate(
            {**refused.request, "referral": self._s.referral.references(), "organization": self._s.program.organization}
        )
        if isinstance(request, WriteCarePlanInput):
            treatment = not request.follow_up_days
            track = self._s.program.track(request.track_id) if treatment else None
            request = request.model_copy(update={"track": track, **self._plan_links(treatment=treatment)})
        return request
