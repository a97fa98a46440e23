"""The quality measures page: a period of hospital discharge dates, by track and by source, with a chart."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from referral_service.api.dashboard.pages import page
from referral_service.api.dashboard.views import follow_up_chart, percent_text
from referral_service.api.deps import ReadModelDep, StateDep
from referral_service.referrals.measures import default_period, measure

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/measures", response_class=HTMLResponse)
async def measures(request: Request, services: StateDep, read_model: ReadModelDep) -> Response:
    """The quality measures for a period of hospital discharge dates, by track and by source, with a chart."""
    given = {name: request.query_params.get(name, "") for name in ("from", "to")}
    report, problem, status = None, None, 200
    try:
        period = default_period(*(date.fromisoformat(value) if value else None for value in given.values()))
    except ValueError:
        period, problem, status = default_period(None, None), "dates must be YYYY-MM-DD", 400
    if problem is None and period[0] > period[1]:
        problem, status = "the period must not end before it starts", 400
    if problem is None:
        try:
            report = await measure(read_model, services.program, services.source_ids, *period)
        except SQLAlchemyError:  # the service database out of reach: show the page, say so
            problem, status = "the service database is unavailable; reload to retry", 503
    return page(
        request,
        "measures.html",
        title="Quality measures",
        period=period,
        given=given,
        problem=problem,
        report=report,
        chart=follow_up_chart(report.by_track) if report else None,
        percent=percent_text,
        status=status,
    )
