"""The measures chart and the caseload board's counts and filters: pure geometry and grouping, no servers."""

from __future__ import annotations

from datetime import date

import pytest

from referral_service.api.dashboard.pages import TEMPLATES
from referral_service.api.dashboard.views import (
    CaseloadFilters,
    CaseloadRow,
    count_matrix,
    follow_up_chart,
    percent_text,
)
from referral_service.domain.measures import MeasuredReferral, Rate, compute_measures, group_measures
from referral_service.referrals.measures import MeasuresResponse


def test_percent_text_says_no_data_rather_than_zero():
    assert percent_text(Rate.of(1, 3)) == "33%"
    assert percent_text(Rate.of(0, 2)) == "0%"
    assert percent_text(Rate.of(0, 0)) == "no data"


def test_follow_up_chart_draws_two_bars_per_track_scaled_to_100_percent_and_none_without_data():
    left = date(2026, 3, 2)
    one_in_three = [
        MeasuredReferral(track_id="adult-mh", source_id="s", hospital_discharge=left, min_weekly_hours=9).facts(),
    ] * 2
    groups = [
        group_measures("adult-mh", one_in_three, date(2026, 9, 1)),  # 0 of 2 in both windows
        group_measures("sud", [], date(2026, 9, 1)),
    ]
    full = groups[0].model_copy(update={"follow_up_7_days": Rate.of(1, 4), "follow_up_30_days": Rate.of(4, 4)})
    chart = follow_up_chart([full, groups[1]])

    assert [(b.track, b.window, b.percent) for b in chart.bars] == [("adult-mh", 7, "25"), ("adult-mh", 30, "100")]
    quarter, whole = chart.bars
    assert whole.height == pytest.approx(4 * quarter.height, abs=0.05)
    assert whole.y == chart.top
    assert quarter.y + quarter.height == chart.plot_bottom
    assert quarter.x + quarter.width < whole.x
    assert [(s.track, s.has_data) for s in chart.slots] == [("adult-mh", True), ("sud", False)]
    zero = follow_up_chart([groups[0]])
    assert [b.height for b in zero.bars] == [0, 0]  # 0% is data: a flat bar, unlike "no data"


def row(key: str, phase: str, track: str | None, **flags: object) -> CaseloadRow:
    values: dict[str, object] = {
        "at_risk": False,
        "overdue": False,
        "next_deadline": None,
        "countdown": "",
        "team": {},
        "case_manager": None,
        "readable": True,
    }
    values.update(flags)
    return CaseloadRow(key=key, phase=phase, track=track, **values)  # type: ignore[arg-type]


def test_count_matrix_lists_every_track_and_phase_and_totals():
    rows = [
        row("a", "in_treatment", "adult-mh"),
        row("b", "in_treatment", "adult-mh"),
        row("c", "screening", None),
        row("d", "aftercare", "retired-track"),
    ]
    matrix = count_matrix(rows, ["adult-mh", "sud"], ["screening", "in_treatment", "aftercare"])

    assert matrix.tracks == ["adult-mh", "sud", "retired-track", None]
    assert matrix.count("adult-mh", "in_treatment") == 2
    assert matrix.count("sud", "screening") == 0
    assert matrix.track_total(None) == 1
    assert matrix.phase_total("in_treatment") == 2
    assert matrix.total == 4


def test_filters_combine_track_member_risk_and_overdue():
    rows = [
        row("a", "in_treatment", "adult-mh", team={"lcsw-reyes": "Reyes"}, at_risk=True),
        row("b", "intake_scheduled", "sud", team={"ladc-brooks": "Brooks"}, at_risk=True, overdue=True),
        row("c", "screening", None),
    ]

    def keys(filters: CaseloadFilters) -> list[str]:
        return [r.key for r in rows if filters.admit(r)]

    assert keys(CaseloadFilters()) == ["a", "b", "c"]
    assert keys(CaseloadFilters(member="ladc-brooks")) == ["b"]
    assert keys(CaseloadFilters(at_risk=True)) == ["a", "b"]
    assert keys(CaseloadFilters(overdue=True)) == ["b"]
    assert keys(CaseloadFilters(track="adult-mh", overdue=True)) == []


def test_measures_page_shows_denominators_and_no_data_for_empty_groups():
    report = compute_measures(
        [],
        period_from=date(2026, 3, 1),
        period_to=date(2026, 3, 31),
        as_of=date(2026, 9, 1),
        tracks=["adult-mh"],
        sources=["st-marys"],
    )
    html = TEMPLATES.get_template("measures.html").render(
        flash=None,
        path="/measures",
        title="Quality measures",
        period=(report.period_from, report.period_to),
        given={"from": "", "to": ""},
        problem=None,
        report=MeasuresResponse(**dict(report), referrals_scanned=0, unreadable=0, scan_limit_reached=False),
        chart=follow_up_chart(report.by_track),
        percent=percent_text,
    )
    assert html.count('data-denominator="0"') > 10
    assert 'data-rate="0' not in html  # an empty group is never a 0% rate ...
    assert html.count('<span class="no-data">no data</span>') == 2 * 2 * 7  # ... in each rate cell, both tables
    assert 'class="no-data" x=' in html  # ... nor a flat bar in the chart
    assert '<rect class="bar' not in html
