"""What the pages show, computed from a snapshot: pure functions, no I/O (the routes do the talking)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from referral_service.domain.attendance import SessionRecord, weekly_hours


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
