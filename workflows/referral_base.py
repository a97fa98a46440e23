"""What every part of ``ReferralWorkflow`` shares: its state, moving along the lifecycle, deadlines and flags, the
search attributes and metrics it publishes, and the read-model row it keeps current. No commands of its own
but the row's local activity and search-attribute upserts; the class is a base of the workflow, not one."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from referral_service.activities.read_model import ReadModelActivities
    from referral_service.domain.attendance import is_at_risk
    from referral_service.domain.clinical_dates import Breach
    from referral_service.domain.lifecycle import ImpossibleTransition, Phase, check_transition
    from referral_service.domain.metric_names import DEADLINE_ESCALATIONS, PHASE_ENTERED
    from referral_service.domain.program_day import Today, time_zone
    from referral_service.domain.referral_row import ReferralRow, RowVersion
    from workflows import search_attributes
    from workflows.referral_row import referral_row
    from workflows.referral_types import CancelInput, ReferralState, ScreeningDecisionInput, TimelineEntry

# The read-model row is retried until the service database takes it; the referral goes on meanwhile.
ROW_TIMEOUT = timedelta(seconds=30)
ROW_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=1)
)
# Rows are compared without their version: a change is a change of content.
UNVERSIONED = RowVersion(at=datetime(1970, 1, 1, tzinfo=UTC), event=0)
# The ApplicationError type of a refusal under a clinical date rule (the API answers it 422, others 409).
CLINICAL_DATE_ERROR = "ClinicalDateRule"
# The search attributes as ``_publish`` compares them: phase, source, at risk, track, next deadline, refused writes.
Published = tuple[str, str, bool, str | None, datetime | None, int]


def date_refusal(breach: Breach) -> ApplicationError:
    return ApplicationError(str(breach), type=CLINICAL_DATE_ERROR)


def end_of(day: date, zone: str) -> datetime:
    """A deadline falling on ``day`` (a program's day) passes at the end of that day in the program's zone: in
    UTC's, a follow-up due on a New York day would pass at 7 pm there, before the day's last calls."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=time_zone(zone)).astimezone(UTC)


class ReferralBase:
    """The workflow's state and its bookkeeping (set up by ``ReferralWorkflow.__init__``)."""

    _s: ReferralState
    _decision: ScreeningDecisionInput | None  # the decision waiting to be applied
    _applying: bool  # a decision taken from ``_decision`` whose effects are still being written
    _cancel: CancelInput | None
    _reassigning: bool  # a reassignment whose CareTeam and CarePlan writes are in flight
    _retrying: bool  # refused writes being sent again (``retry_writes``)
    # The search-attribute values last upserted by this run (None: none yet, so the first goes unless the run
    # started with those values).
    _published: Published | None
    # The read-model row: the last one written, and the one the state now gives (``_row_changed``).
    _row_sent: ReferralRow | None
    _row_due: ReferralRow | None
    _projector: asyncio.Task[None] | None  # kept: a task nobody holds may be collected

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

    def _note_duplicates(self, keys: list[str]) -> None:
        """Open referrals that may be the same patient, on the timeline. State only, no command: recorded
        histories replay whether the keys came with the start or in a signal."""
        self._s.timeline.append(
            TimelineEntry(at=workflow.now(), event="possible duplicate patient", detail=", ".join(keys))
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
        # What the run started with (the intake's attributes, or what continue-as-new carried over) is published
        # already. Histories recorded before this change upserted it again: they replay through the upsert.
        if self._published is None and values == _started_with() and workflow.patched("published-at-start"):
            self._published = values
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


def _started_with() -> Published | None:
    """The search attributes the run started with, as ``_publish`` builds them; None without phase, source and
    risk (a run started without the intake's attributes)."""
    given = workflow.info().typed_search_attributes
    phase, source = given.get(search_attributes.PHASE), given.get(search_attributes.SOURCE)
    at_risk = given.get(search_attributes.AT_RISK)
    if phase is None or source is None or at_risk is None:
        return None
    track, deadline = given.get(search_attributes.TRACK), given.get(search_attributes.NEXT_DEADLINE)
    return phase, source, at_risk, track, deadline, given.get(search_attributes.REFUSED_WRITES) or 0
