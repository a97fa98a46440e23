"""What the pages show, computed from a snapshot: pure functions, no I/O (the routes do the talking)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from referral_service.domain.assessment import SCORE_RANGE, AssessmentRecord, Instrument
from referral_service.domain.attendance import SessionRecord, weekly_hours
from referral_service.domain.measures import GroupMeasures, Rate


def countdown(deadline: datetime | None, now: datetime) -> str:
    """``in 2 d 5 h``, ``in 3 h``, ``overdue by 1 d 2 h``; an empty string when there is no deadline."""
    if deadline is None:
        return ""
    seconds = (deadline - now).total_seconds()
    hours_total = int(abs(seconds) // 3600)
    days, hours = divmod(hours_total, 24)
    if days:
        text = f"{days} d {hours} h"
    elif hours:
        text = f"{hours} h"
    else:
        text = "< 1 h"
    return f"in {text}" if seconds >= 0 else f"overdue by {text}"


def hours_text(hours: float) -> str:
    """3.0 -> ``3``, 2.5 -> ``2.5``; at most two decimals."""
    return f"{round(hours, 2):g}"


@dataclass(frozen=True)
class Bar:
    week: str
    hours: float
    x: float
    y: float
    width: float
    height: float
    label_x: float
    meets_minimum: bool

    @property
    def hours_text(self) -> str:
        return hours_text(self.hours)


@dataclass(frozen=True)
class WeeklyChart:
    """Geometry of the "hours attended per week" bar chart (an inline SVG), in SVG user units."""

    width: int
    height: int
    left: int
    top: int
    plot_height: int
    plot_bottom: int
    bars: list[Bar]
    minimum_hours: float
    minimum_y: float
    ticks: list[tuple[float, float]]  # (hours, y)

    @property
    def minimum_text(self) -> str:
        return hours_text(self.minimum_hours)


def weekly_chart(sessions: list[SessionRecord], minimum_hours: float) -> WeeklyChart:
    """Bars per ISO week with attendance (weekly_hours), scaled so the minimum line always fits."""
    width, height, left, right, top, bottom = 640, 260, 44, 16, 16, 40
    plot_width, plot_height = width - left - right, height - top - bottom
    per_week = weekly_hours(sessions)
    top_hours = max([minimum_hours, *per_week.values()])
    step = 3 if top_hours <= 24 else 6
    scale_max = step * math.ceil(top_hours * 1.1 / step)

    def y_of(hours: float) -> float:
        return round(top + plot_height * (1 - hours / scale_max), 2)

    slot = plot_width / max(len(per_week), 1)
    bar_width = min(slot * 0.6, 64)
    bars = []
    for index, (week, hours) in enumerate(per_week.items()):
        x = left + slot * index + (slot - bar_width) / 2
        bars.append(
            Bar(
                week=week,
                hours=hours,
                x=round(x, 2),
                y=y_of(hours),
                width=round(bar_width, 2),
                height=round(top + plot_height - y_of(hours), 2),
                label_x=round(x + bar_width / 2, 2),
                meets_minimum=hours >= minimum_hours,
            )
        )
    ticks = [(float(h), y_of(h)) for h in range(0, scale_max + 1, step)]
    return WeeklyChart(
        width=width,
        height=height,
        left=left,
        top=top,
        plot_height=plot_height,
        plot_bottom=top + plot_height,
        bars=bars,
        minimum_hours=minimum_hours,
        minimum_y=y_of(minimum_hours),
        ticks=ticks,
    )


@dataclass(frozen=True)
class ScorePoint:
    assessment_id: str
    date: date
    score: int
    x: float
    y: float


@dataclass(frozen=True)
class ScoreSeries:
    """One instrument's scores in date order, on a y axis spanning the instrument's whole score range."""

    instrument: Instrument
    points: list[ScorePoint]
    ticks: list[tuple[int, float]]  # (score, y)

    @property
    def slug(self) -> str:
        return self.instrument.value.lower().replace("-", "")

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x},{p.y}" for p in self.points)


@dataclass(frozen=True)
class AssessmentChart:
    """Geometry of the "scores over time" charts: one small line chart per instrument, a shared date axis."""

    width: int
    height: int
    left: int
    right_x: int
    plot_bottom: int
    first: date
    last: date
    series: list[ScoreSeries]


def assessment_chart(assessments: list[AssessmentRecord]) -> AssessmentChart | None:
    """Scores per instrument over time; x from the first to the last assessment date (any instrument), so the
    charts line up; None when nothing is recorded yet."""
    if not assessments:
        return None
    width, height, left, right, top, bottom = 640, 200, 44, 24, 16, 40
    plot_width, plot_height = width - left - right, height - top - bottom
    first = min(a.date for a in assessments)
    last = max(a.date for a in assessments)
    span = (last - first).days

    def x_of(day: date) -> float:
        return round(left + (plot_width * (day - first).days / span if span else plot_width / 2), 2)

    series = []
    for instrument in Instrument:
        recorded = sorted(
            (a for a in assessments if a.instrument == instrument), key=lambda a: (a.date, a.assessment_id)
        )
        if not recorded:
            continue
        high = SCORE_RANGE[instrument][1]

        def y_of(score: float, high: int = high) -> float:
            return round(top + plot_height * (1 - score / high), 2)

        points = [ScorePoint(a.assessment_id, a.date, a.score, x_of(a.date), y_of(a.score)) for a in recorded]
        step = max(1, math.ceil(high / 4))
        ticks = [(score, y_of(score)) for score in sorted({*range(0, high, step), high})]
        series.append(ScoreSeries(instrument=instrument, points=points, ticks=ticks))
    return AssessmentChart(
        width=width,
        height=height,
        left=left,
        right_x=width - right,
        plot_bottom=top + plot_height,
        first=first,
        last=last,
        series=series,
    )


def percent_text(rate: Rate) -> str:
    """``33%``, or ``no data`` when nothing is in the denominator (never a misleading 0%)."""
    return "no data" if rate.rate is None else f"{round(rate.rate * 100)}%"


@dataclass(frozen=True)
class RateBar:
    track: str
    window: int  # days: 7 or 30
    rate: Rate
    x: float
    y: float
    width: float
    height: float
    label_x: float

    @property
    def percent(self) -> str:
        """The rate in percent, one decimal (the bar's data attribute)."""
        assert self.rate.rate is not None
        return f"{round(self.rate.rate * 100, 1):g}"


@dataclass(frozen=True)
class TrackSlot:
    track: str
    label_x: float
    has_data: bool


@dataclass(frozen=True)
class FollowUpChart:
    """Geometry of the "follow-up within 7 and 30 days" chart: two bars per track, 0-100 %."""

    width: int
    height: int
    left: int
    top: int
    plot_bottom: int
    bars: list[RateBar]
    slots: list[TrackSlot]
    ticks: list[tuple[int, float]]  # (percent, y)


def follow_up_chart(groups: list[GroupMeasures]) -> FollowUpChart:
    """A pair of bars per track (7-day, 30-day follow-up rate); a track without data gets no bar, a label."""
    width, height, left, right, top, bottom = 720, 280, 44, 16, 16, 44
    plot_width, plot_height = width - left - right, height - top - bottom

    def y_of(percent: float) -> float:
        return round(top + plot_height * (1 - percent / 100), 2)

    slot = plot_width / max(len(groups), 1)
    bar_width = min(slot * 0.32, 40)
    bars, slots = [], []
    for index, group in enumerate(groups):
        centre = left + slot * index + slot / 2
        windows = ((7, group.follow_up_7_days), (30, group.follow_up_30_days))
        for window, rate in windows:
            if rate.rate is None:
                continue
            x = centre - bar_width - 1 if window == 7 else centre + 1  # side by side, 2 units apart
            y = y_of(rate.rate * 100)
            bars.append(
                RateBar(
                    track=group.group,
                    window=window,
                    rate=rate,
                    x=round(x, 2),
                    y=y,
                    width=round(bar_width, 2),
                    height=round(top + plot_height - y, 2),
                    label_x=round(x + bar_width / 2, 2),
                )
            )
        slots.append(TrackSlot(group.group, round(centre, 2), any(r.rate is not None for _, r in windows)))
    return FollowUpChart(
        width=width,
        height=height,
        left=left,
        top=top,
        plot_bottom=top + plot_height,
        bars=bars,
        slots=slots,
        ticks=[(p, y_of(p)) for p in range(0, 101, 25)],
    )


@dataclass(frozen=True)
class CaseloadRow:
    """One referral on the caseload board: codes, dates and staff only."""

    key: str
    phase: str
    track: str | None
    at_risk: bool
    overdue: bool
    next_deadline: datetime | None
    countdown: str
    team: dict[str, str]  # staff id -> name
    case_manager: str | None
    readable: bool  # False: the row's sealed patient details cannot be opened (payload key ring)
    refused_writes: int = 0  # writes the EHR refused for good, waiting to be retried
    patient: dict[str, Any] = field(default_factory=dict)  # ``people.person_cells``


@dataclass(frozen=True)
class CaseloadFilters:
    """The board's filters; empty or False means "any"."""

    track: str = ""
    member: str = ""  # staff id: on the referral's current care team
    at_risk: bool = False
    overdue: bool = False

    def admit(self, row: CaseloadRow) -> bool:
        return (
            (not self.track or row.track == self.track)
            and (not self.member or self.member in row.team)
            and (not self.at_risk or row.at_risk)
            and (not self.overdue or row.overdue)
        )


@dataclass(frozen=True)
class CountMatrix:
    """Referrals counted by track (rows; None: not accepted yet) and phase (columns)."""

    tracks: list[str | None]
    phases: list[str]
    counts: dict[tuple[str | None, str], int]

    def count(self, track: str | None, phase: str) -> int:
        return self.counts.get((track, phase), 0)

    def track_total(self, track: str | None) -> int:
        return sum(self.count(track, phase) for phase in self.phases)

    def phase_total(self, phase: str) -> int:
        return sum(self.count(track, phase) for track in self.tracks)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def count_matrix(rows: list[CaseloadRow], tracks: list[str], phases: list[str]) -> CountMatrix:
    """Every program track and phase is a row or column (zeros included), then tracks only the data has."""
    counts: dict[tuple[str | None, str], int] = {}
    for row in rows:
        counts[(row.track, row.phase)] = counts.get((row.track, row.phase), 0) + 1
    extra = sorted({row.track for row in rows if row.track is not None} - set(tracks))
    extra_phases = sorted({row.phase for row in rows} - set(phases))
    return CountMatrix(tracks=[*tracks, *extra, None], phases=[*phases, *extra_phases], counts=counts)
