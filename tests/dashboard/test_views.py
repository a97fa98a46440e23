"""The dashboard's pure parts: countdown text, chart geometry, escaping."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from referral_service.api.dashboard.pages import TEMPLATES
from referral_service.api.dashboard.views import assessment_chart, countdown, weekly_chart
from referral_service.domain.assessment import AssessmentRecord, Instrument
from referral_service.domain.attendance import SessionRecord
from referral_service.domain.program import SessionKind

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def session(n: int, day: date, minutes: int, *, attended: bool = True) -> SessionRecord:
    return SessionRecord(session_id=f"s{n}", date=day, kind=SessionKind.GROUP, minutes=minutes, attended=attended)


def test_countdown_reads_days_and_hours_ahead_or_overdue():
    assert countdown(NOW + timedelta(days=2, hours=5, minutes=10), NOW) == "in 2 d 5 h"
    assert countdown(NOW + timedelta(hours=3), NOW) == "in 3 h"
    assert countdown(NOW + timedelta(minutes=20), NOW) == "in < 1 h"
    assert countdown(NOW - timedelta(days=1, hours=2), NOW) == "overdue by 1 d 2 h"
    assert countdown(None, NOW) == ""


def test_chart_has_a_bar_per_attended_week_and_the_minimum_line_inside_the_plot():
    monday = date(2026, 11, 23)
    chart = weekly_chart(
        [
            session(1, monday, 180),
            session(2, monday + timedelta(days=2), 90),
            session(3, monday + timedelta(days=7), 360),
            session(4, monday + timedelta(days=8), 180, attended=False),
        ],
        minimum_hours=9,
    )

    assert [(bar.week, bar.hours_text, bar.meets_minimum) for bar in chart.bars] == [
        ("2026-W48", "4.5", False),
        ("2026-W49", "6", False),
    ]
    assert chart.minimum_text == "9"
    assert chart.top <= chart.minimum_y < chart.plot_bottom
    short, long = chart.bars
    assert long.height == pytest.approx(360 / 270 * short.height, abs=0.05)
    assert short.y + short.height == chart.plot_bottom
    assert short.x + short.width < long.x


def test_chart_without_sessions_still_draws_the_minimum():
    chart = weekly_chart([], minimum_hours=6)
    assert chart.bars == []
    assert chart.top <= chart.minimum_y < chart.plot_bottom


def test_templates_escape_what_they_show():
    html = TEMPLATES.get_template("missing.html").render(
        flash=None, path="/x", title="t", key="<script>alert(1)</script>", reason="<b>no</b>"
    )
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;no&lt;/b&gt;" in html


def test_assessment_chart_has_one_line_per_instrument_on_a_shared_date_axis():
    day = date(2026, 11, 2)
    scores = [
        AssessmentRecord(assessment_id="b", instrument=Instrument.PHQ_9, score=9, date=day + timedelta(days=10)),
        AssessmentRecord(assessment_id="a", instrument=Instrument.PHQ_9, score=27, date=day),
        AssessmentRecord(assessment_id="c", instrument=Instrument.GAD_7, score=0, date=day + timedelta(days=5)),
    ]
    chart = assessment_chart(scores)
    assert chart is not None
    assert (chart.first, chart.last) == (day, day + timedelta(days=10))
    phq, gad = chart.series
    assert [(p.date, p.score) for p in phq.points] == [(day, 27), (day + timedelta(days=10), 9)]
    assert (phq.points[0].x, phq.points[1].x) == (chart.left, chart.right_x)  # first and last date at the edges
    assert phq.points[0].y == 16  # the top of the range is the top of the plot
    assert gad.points[0].y == chart.plot_bottom  # 0 is the bottom
    assert gad.points[0].x == (chart.left + chart.right_x) / 2  # day 5 of 10
    assert (phq.ticks[0][0], phq.ticks[-1][0], gad.ticks[-1][0]) == (0, 27, 21)
    assert assessment_chart([]) is None
