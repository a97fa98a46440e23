"""``list``: referrals from the read model, a page at a time, filtered."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from referral_service.cli import render
from referral_service.cli.api_client import EXIT_OK, EXIT_USAGE, ApiClient, CliError, body_of
from referral_service.cli.options import add_client_options, print_json, wants_json
from referral_service.domain.lifecycle import Phase

NEXT_PAGE_HEADER = "X-Next-Page-Token"  # the list API's paging (referral_routes.NEXT_PAGE_HEADER)


def add(commands: Any) -> None:
    listing = commands.add_parser(
        "list",
        help="list referrals: id, patient, referrer, phase, track, at-risk, next deadline, writes the EHR refused",
        description="Referrals from the service's read model (updated as each referral changes), newest first; "
        "the patient's name, age, sex, MRN and phone as your role may see them (an intake coordinator sees no "
        "MRN or phone; `unreadable` when the row's sealed details cannot be opened). `--phase failed` lists "
        "referrals whose workflow failed.",
    )
    listing.add_argument(
        "--phase", choices=[*(str(p) for p in Phase), "failed"], help="only referrals in this phase (or failed)"
    )
    listing.add_argument("--track", metavar="T", help="only referrals accepted onto this track id")
    listing.add_argument("--source", metavar="S", help="only referrals from this referring EHR (source id)")
    listing.add_argument("--at-risk", action="store_true", help="only referrals flagged at risk")
    listing.add_argument(
        "--search",
        metavar="TEXT",
        help="only referrals whose patient has this word in their name (whole word, any case) or whose order "
        "number contains TEXT",
    )
    listing.add_argument("--overdue", action="store_true", help="only referrals whose next deadline has passed")
    listing.add_argument(
        "--refused-writes",
        action="store_true",
        help="only referrals with writes the EHR refused for good (send them again with `retry-writes`)",
    )
    listing.add_argument(
        "--limit", type=int, default=200, metavar="N", help="at most N referrals a page (1-1000; default 200)"
    )
    listing.add_argument(
        "--page-token",
        metavar="TOKEN",
        help="the next page, with the same filters (when more match, the token is printed to stderr)",
    )
    add_client_options(listing, json_help="print the rows as a JSON list")
    listing.set_defaults(handler=_list)


def _list(args: argparse.Namespace, client: ApiClient) -> int:
    if not 1 <= args.limit <= 1000:
        raise CliError("--limit must be between 1 and 1000", EXIT_USAGE)
    params: dict[str, str | int] = {"limit": args.limit}
    for name in ("phase", "track", "source"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    for flag in ("at_risk", "overdue", "refused_writes"):
        if getattr(args, flag):
            params[flag] = "true"
    if args.search:
        params["q"] = args.search
    if args.page_token:
        params["page_token"] = args.page_token
    response = client.request("GET", "/api/referrals", params=params)
    rows = body_of(response)
    if wants_json(args):
        print_json(rows)
    elif rows:
        print(render.table(render.LIST_HEADERS, render.summary_rows(rows)))
    else:
        print("no referrals match", file=sys.stderr)
    if next_page := response.headers.get(NEXT_PAGE_HEADER):
        print(f"more referrals match: add --page-token {next_page} for the next page", file=sys.stderr)
    return EXIT_OK
