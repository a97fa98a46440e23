"""The scenario file (TOML, ``format = 1``): a referral, a timeline of events in days, and expectations.

docs/scenarios.md describes every field. ``load_scenario`` validates a file and raises ``ScenarioError``
naming the file and each field at fault.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from referral_service.domain.discharge import DeclineReason, DischargeReason
from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import LevelOfCare, SessionKind

FORMAT_VERSION = 1
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


# The scenarios this project ships (scenarios/ at the top of the checkout).
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "scenarios"


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and every field at fault."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReferralSpec(_Strict):
    """The referral: a ServiceRequest or a Bundle, seeded in the EHR and then received by the service."""

    file: Path  # relative to the scenario file
    source: str = Field(default="hapi-test", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    # The story's dates move so the hospital discharge falls on this day of the replay (0: the day received).
    hospital_discharge_day: int = Field(default=0, ge=-30, le=1)
    # The source's capability overrides, as in the sources file (e.g. {CarePlan = false} for an EHR whose
    # CarePlan is read-only): scenarios sharing a source must agree on them.
    writable: dict[str, bool] = Field(default_factory=dict)


class _Event(_Strict):
    day: int = Field(ge=0, le=730)


class Accept(_Event):
    do: Literal["accept"]
    track: str
    intake_day: int | None = Field(default=None, ge=0)


class Decline(_Event):
    do: Literal["decline"]
    reason: DeclineReason


class Waitlist(_Event):
    do: Literal["waitlist"]


class _SessionFields(_Event):
    kind: SessionKind
    minutes: int = Field(gt=0, le=600)


class Attend(_SessionFields):
    do: Literal["attend"]
    session_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")


class Miss(_SessionFields):
    do: Literal["miss"]
    session_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")


class Sessions(_SessionFields):
    """A weekly series from ``day``: one session on each of ``week_days`` (offsets 0-6) for ``weeks`` weeks."""

    do: Literal["sessions"]
    weeks: int = Field(ge=1, le=52)
    week_days: list[int] = Field(min_length=1)
    missed_days: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _days_fit(self) -> Sessions:
        if any(not 0 <= offset <= 6 for offset in self.week_days) or len(set(self.week_days)) != len(self.week_days):
            raise ValueError("week_days are distinct offsets 0-6 within each week")
        outside = sorted(set(self.missed_days) - set(self.days()))
        if outside:
            raise ValueError(f"missed_days {outside} are not days of this series")
        return self

    def days(self) -> list[int]:
        return [self.day + 7 * week + offset for week in range(self.weeks) for offset in sorted(self.week_days)]


class Discharge(_Event):
    do: Literal["discharge"]
    reason: DischargeReason
    to_level: LevelOfCare | None = None  # where a transferred patient goes
    note: str = ""

    @model_validator(mode="after")
    def _transfer_has_level(self) -> Discharge:
        if (self.reason == DischargeReason.TRANSFERRED) != (self.to_level is not None):
            raise ValueError("to_level is given exactly when the reason is transferred")
        return self


class FollowUp(_Event):
    do: Literal["follow-up"]
    checkpoint: int = Field(ge=1)  # the aftercare checkpoint (days after program discharge)
    reached: bool
    note: str = ""


class Cancel(_Event):
    do: Literal["cancel"]
    reason: str = "revoked by referrer"


Event = Annotated[
    Accept | Decline | Waitlist | Attend | Miss | Sessions | Discharge | FollowUp | Cancel, Field(discriminator="do")
]


class Timeline(_Strict):
    events: list[Event] = Field(min_length=1)


class ResourceCheck(_Strict):
    """What must be in the EHR for one kind of resource the service writes."""

    count: int | None = Field(default=None, ge=0)  # default: exactly 1 (Encounters: at least 1)
    status: str | None = None
    business_status: str | None = None  # Task.businessStatus code
    status_reason: str | None = None  # Task.statusReason text (the coded decline reason)


class Checkpoint(_Strict):
    phase: Phase | None = None
    task: ResourceCheck | None = None
    care_team: ResourceCheck | None = None
    care_plan: ResourceCheck | None = None
    aftercare_plan: ResourceCheck | None = None
    encounters: ResourceCheck | None = None
    # DocumentReference notes written instead of plans an EHR does not take.
    care_plan_note: ResourceCheck | None = None
    aftercare_plan_note: ResourceCheck | None = None

    @model_validator(mode="after")
    def _task_only_fields(self) -> Checkpoint:
        for name in ("care_team", "care_plan", "aftercare_plan", "encounters", "care_plan_note", "aftercare_plan_note"):
            check: ResourceCheck | None = getattr(self, name)
            if check is not None and (check.business_status or check.status_reason):
                raise ValueError(f"{name}: business_status and status_reason are Task fields")
        return self


class After(Checkpoint):
    """Checked when ``day`` is over: its events applied and the clock at the start of the next day."""

    day: int = Field(ge=0)


class Scenario(_Strict):
    format: Literal[1]
    name: str = Field(pattern=_SLUG.pattern)  # short id: part of the referral's order number in the EHR
    title: str
    referral: ReferralSpec
    timeline: Timeline
    after: list[After] = Field(default_factory=list)
    end: Checkpoint
    # The last day the clock runs to (default: the last event's day); the end checks come when it is over.
    end_day: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _days_in_order(self) -> Scenario:
        last = self.last_day()
        late = [point.day for point in self.after if point.day > last]
        if late:
            raise ValueError(f"after.day {late} falls after the scenario's last day {last}")
        if self.end_day is not None and self.end_day < self.last_event_day():
            raise ValueError(f"end_day {self.end_day} is before the last event (day {self.last_event_day()})")
        ids = [session_id for _, session_id, _ in self.sessions()]
        repeated = sorted({s for s in ids if ids.count(s) > 1})
        if repeated:
            raise ValueError(f"session ids {repeated} repeat; give one of them a session_id")
        return self

    def last_day(self) -> int:
        return self.end_day if self.end_day is not None else self.last_event_day()

    def last_event_day(self) -> int:
        return max(max(e.days()) if isinstance(e, Sessions) else e.day for e in self.timeline.events)

    def sessions(self) -> Iterator[tuple[int, str, bool]]:
        """Every session in the timeline: (day, session id, attended)."""
        for event in self.timeline.events:
            if isinstance(event, Sessions):
                for day in event.days():
                    yield day, session_id(day, event.kind, None), day not in event.missed_days
            elif isinstance(event, Attend | Miss):
                yield event.day, session_id(event.day, event.kind, event.session_id), isinstance(event, Attend)


def session_id(day: int, kind: SessionKind, given: str | None) -> str:
    return given or f"d{day}-{kind.value}"


def load_scenario(path: Path) -> Scenario:
    """Read and validate one scenario file."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path}: not valid TOML: {error}") from None
    if raw.get("format") != FORMAT_VERSION:
        raise ScenarioError(f"{path}: format: this replay reads format = {FORMAT_VERSION}, got {raw.get('format')!r}")
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as error:
        raise ScenarioError(f"{path}: invalid scenario:\n" + "\n".join(_describe(e) for e in error.errors())) from None
    referral = scenario.referral.model_copy(update={"file": (path.parent / scenario.referral.file).resolve()})
    if not referral.file.is_file():
        raise ScenarioError(f"{path}: referral.file: no such file {scenario.referral.file}")
    return scenario.model_copy(update={"referral": referral})


def _describe(error: object) -> str:
    assert isinstance(error, dict)
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
    return f"  {where or '(top level)'}: {error['msg']}"
