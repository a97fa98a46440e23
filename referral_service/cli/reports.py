"""Reports: the quality ``measures``, the caller's day (``today``) and the ``audit`` trail."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from referral_service.cli import render
from referral_service.cli.api_client import EXIT_OK, EXIT_USAGE, ApiClient, CliError, body_of
from referral_service.cli.options import add_client_options, date_arg, print_json, wants_json


def add(commands: Any) -> None:
    _measures_command(commands)
    _today_command(commands)
    _audit_command(commands)


def _measures_command(commands: Any) -> None:
    measures = commands.add_parser(
        "measures",
        help="the quality measures for a period of hospital discharges, by track and by referring source",
        description="Follow-up within 7 and 30 days of hospital discharge (HEDIS FUH/FUI: the discharge day does "
        "not count; open windows are pending), median days to the first session, weeks at the track's minimum "
        "hours, completion and drop-out of program discharges, aftercare follow-ups reached. Every rate shows "
        "its numerator and denominator; an empty group says `no data`. The API reads every accepted referral's "
        "state, so this takes longer on a large caseload.",
    )
    measures.add_argument(
        "--from",
        dest="period_from",
        type=date_arg,
        metavar="YYYY-MM-DD",
        help="first hospital discharge day (default: 89 days before --to)",
    )
    measures.add_argument(
        "--to",
        dest="period_to",
        type=date_arg,
        metavar="YYYY-MM-DD",
        help="last hospital discharge day (default: today)",
    )
    add_client_options(measures, json_help="print the API's report (rates with numerators and denominators) as JSON")
    measures.set_defaults(handler=_measures)


def _measures(args: argparse.Namespace, client: ApiClient) -> int:
    if args.period_from and args.period_to and args.period_from > args.period_to:
        raise CliError("--from must not be after --to", EXIT_USAGE)
    params = {
        name: getattr(args, f"period_{name}").isoformat() for name in ("from", "to") if getattr(args, f"period_{name}")
    }
    report = body_of(client.request("GET", "/api/measures", params=params))
    if wants_json(args):
        print_json(report)
    else:
        print(render.measures_text(report))
    return EXIT_OK


def _today_command(commands: Any) -> None:
    today = commands.add_parser(
        "today",
        help="my day: today's groups and who is expected, first sessions, follow-up calls and outreach due, "
        "referrals at risk or overdue",
        description="The signed-in staff member's day from the service's read model: the groups meeting today on "
        "their tracks with the expected roster (intake scheduled or in treatment), first sessions due within the "
        "program's window, aftercare follow-up calls due within a week, outreach asked for after missed "
        "sessions, and the referrals at risk or overdue on their caseload. The token's subject must be in a "
        "roster member's `subjects` (program file); a program admin, and the local user without sign-in, see "
        "everyone's.",
    )
    add_client_options(today, json_help="print the API's day (GET /api/today) as JSON")
    today.set_defaults(handler=_today)


def _today(args: argparse.Namespace, client: ApiClient) -> int:
    day = body_of(client.request("GET", "/api/today"))
    if wants_json(args):
        print_json(day)
    else:
        print(render.today_text(day))
    return EXIT_OK


def _audit_command(commands: Any) -> None:
    audit = commands.add_parser(
        "audit",
        help="the audit trail: who did what to which referral, and how it ended (program admins)",
        description="Records of requests to the API, newest first: time (UTC), user (token subject), roles, "
        "action (method and route), referral, HTTP status and outcome. Needs a program admin's token.",
    )
    audit.add_argument("--referral", metavar="ID", help="only requests about this referral")
    audit.add_argument("--user", metavar="U", help="only requests by this user (token subject, or local)")
    audit.add_argument("--action", metavar="A", help="only this action, e.g. 'POST /api/referrals/{key}/discharge'")
    audit.add_argument("--since", metavar="TIME", help="from this time (ISO 8601; no zone: UTC)")
    audit.add_argument("--limit", type=int, default=100, metavar="N", help="at most N records (1-1000; default 100)")
    add_client_options(audit, json_help="print the records as a JSON list")
    audit.set_defaults(handler=_audit)


def _audit(args: argparse.Namespace, client: ApiClient) -> int:
    if not 1 <= args.limit <= 1000:
        raise CliError("--limit must be between 1 and 1000", EXIT_USAGE)
    params: dict[str, str | int] = {"limit": args.limit}
    for name in ("referral", "user", "action", "since"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    rows = body_of(client.request("GET", "/api/audit", params=params))
    if wants_json(args):
        print_json(rows)
    elif rows:
        print(render.table(render.AUDIT_HEADERS, render.audit_rows(rows)))
    else:
        print("no audit records match", file=sys.stderr)
    return EXIT_OK
