"""Client commands: submit a referral, list, show, record a session, reassign the team, discharge, retry the writes
the EHR refused, measures, the audit trail; all over the HTTP API."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date, time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from referral_service import cli_render as render
from referral_service.cli_http import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, FHIR_JSON, ApiClient, CliError, body_of
from referral_service.domain.discharge import DischargeReason
from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import SessionKind, StaffRole

DEFAULT_TIMEOUT_S = 30.0
NO_SUCH_REFERRAL = "no such referral"  # the API's 404 detail, told apart from a wrong URL's 404
INTAKE_PATHS = {"ServiceRequest": "/fhir/ServiceRequest", "Bundle": "/fhir"}
NEXT_PAGE_HEADER = "X-Next-Page-Token"  # the list API's paging (referral_routes.NEXT_PAGE_HEADER)
ROLE_NAMES = [role.value.replace("_", "-") for role in StaffRole]
Handler = Callable[[argparse.Namespace, ApiClient], int]


def add_client_options(parser: argparse.ArgumentParser, *, json_help: str | None) -> None:
    """``--api-url`` and ``--timeout`` (and ``--json`` when the command has a JSON form)."""
    parser.add_argument(
        "--api-url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="base URL of the running API (default: $IOP_API_URL, else http://API_HOST:API_PORT from settings)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help=f"give up waiting for the API after this long (default: {DEFAULT_TIMEOUT_S:g}; connecting: at most 5)",
    )
    if json_help:
        parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=json_help)


def add_commands(commands: Any) -> None:
    """The client subcommands, on the top-level parser's subparsers."""
    submit = commands.add_parser(
        "submit",
        help="submit a referral (FHIR ServiceRequest or Bundle JSON) to the intake endpoint",
        description="POST a ServiceRequest to /fhir/ServiceRequest or a Bundle to /fhir (chosen by resourceType) "
        "and print the closed-loop Task: id, status, businessStatus and Location. Sending the same referral "
        "again starts nothing and reports that it was already received. A refusal prints each OperationOutcome "
        "issue as `severity code expression: diagnostics` and exits 1.",
    )
    submit.add_argument("file", type=Path, metavar="FILE", help="JSON file holding a ServiceRequest or a Bundle")
    submit.add_argument(
        "--source", metavar="ID", help="the referring EHR's source id (X-Referral-Source), if the API cannot tell"
    )
    add_client_options(submit, json_help="print the Task's id, status, businessStatus and Location as JSON")
    submit.set_defaults(handler=_submit)

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

    show = commands.add_parser(
        "show",
        help="show one referral: phase, track, team, deadlines, sessions, timeline, EHR writes and refusals",
        description="A referral's current state, without patient details (no name, birth date or identifiers).",
    )
    show.add_argument("id", metavar="ID", help="the referral id (the Task id `submit` printed)")
    add_client_options(show, json_help="print the same (patient-free) view as JSON")
    show.set_defaults(handler=_show)

    attend = commands.add_parser(
        "attend",
        help="record a session (attended, or missed with --absent) for a referral in treatment",
        description="Record one session; an attended one is written to the referring EHR as an Encounter. "
        "Possible once the referral is accepted (intake scheduled or in treatment). Recording the same "
        "session id again replaces it. A date a clinical date rule refuses (after today in the program's time "
        "zone, before the hospital discharge, after the program discharge) prints the rule's name (exit 1).",
    )
    attend.add_argument("id", metavar="ID", help="the referral id")
    attend.add_argument(
        "--session-id", required=True, metavar="S", help="your id for the session (letters, digits, ._-)"
    )
    attend.add_argument("--date", required=True, type=_date, metavar="YYYY-MM-DD", help="the session's date")
    attend.add_argument("--kind", required=True, choices=[str(k) for k in SessionKind], help="the kind of session")
    attend.add_argument("--minutes", required=True, type=int, metavar="N", help="the session's length (1-600)")
    attend.add_argument("--start", type=_time, metavar="HH:MM", help="start time (default 09:00)")
    attend.add_argument("--telehealth", action="store_true", help="the session was by telehealth (default: in person)")
    attend.add_argument("--staff-id", metavar="ID", help="the staff member who ran it")
    attend.add_argument("--absent", action="store_true", help="the patient missed the session")
    add_client_options(attend, json_help="print the referral's updated (patient-free) view as JSON")
    attend.set_defaults(handler=_attend)

    team = commands.add_parser(
        "team",
        help="reassign care-team roles to named roster members",
        description="Give one or more roles of an accepted referral's care team (intake scheduled or in "
        "treatment) to other members of the program's roster, e.g. --role primary-therapist --member lmft-chen "
        "(repeat the pair for several roles). The CareTeam is rewritten in the referring EHR and the CarePlan "
        "revised; the previous assignment stays in the referral's history. A member of another role or track, "
        "a role the track's teams lack, or a member at their caseload limit is refused with the reason (exit 1).",
    )
    team.add_argument("id", metavar="ID", help="the referral id")
    team.add_argument(
        "--role",
        action="append",
        required=True,
        type=lambda text: text.replace("_", "-"),
        choices=ROLE_NAMES,
        help="a role to reassign",
    )
    team.add_argument(
        "--member", action="append", required=True, metavar="STAFF_ID", help="the roster member for that --role"
    )
    add_client_options(team, json_help="print the referral's updated (patient-free) view as JSON")
    team.set_defaults(handler=_team)

    discharge = commands.add_parser(
        "discharge",
        help="discharge a referral from the program with a coded reason",
        description="Discharge from the program (intake scheduled or in treatment); waits until the referring "
        "EHR has been told (CarePlan completed, CareTeam inactive, Task updated). A date after today in the "
        "program's time zone, before the acceptance or before an attended session is refused naming the rule "
        "(exit 1).",
    )
    discharge.add_argument("id", metavar="ID", help="the referral id")
    discharge.add_argument("--reason", required=True, choices=[str(r) for r in DischargeReason], help="coded reason")
    discharge.add_argument(
        "--date", type=_date, metavar="YYYY-MM-DD", help="discharge date (default: today on this computer)"
    )
    discharge.add_argument(
        "--to-level",
        metavar="FRAMEWORK:EDITION:LEVEL",
        type=_level,
        help="for --reason transferred: the level of care the patient goes to, e.g. ASAM:3:2.5",
    )
    discharge.add_argument("--note", help="a short note (do not put patient details here)")
    add_client_options(discharge, json_help="print the referral's updated (patient-free) view as JSON")
    discharge.set_defaults(handler=_discharge)

    retry = commands.add_parser(
        "retry-writes",
        help="send the writes the EHR refused for good again, once the cause is fixed on the EHR's side",
        description="A write the referring EHR refused for good (HTTP 400, 403, 404, 422, or a 409/412 conflict "
        "that lasted) does not stop the referral: it is recorded (see `show`), the referral is flagged (`list "
        "--refused-writes`) and care goes on. Once the EHR's side is fixed, this sends each refused write again as "
        "the referral stands now, and prints what the EHR took and what it refused again. Exit 0 when it took "
        "everything, 1 when some writes are still refused (or there was nothing to retry).",
    )
    retry.add_argument("id", metavar="ID", help="the referral id")
    add_client_options(retry, json_help="print what was written and what is still refused as JSON")
    retry.set_defaults(handler=_retry_writes)

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
        type=_date,
        metavar="YYYY-MM-DD",
        help="first hospital discharge day (default: 89 days before --to)",
    )
    measures.add_argument(
        "--to", dest="period_to", type=_date, metavar="YYYY-MM-DD", help="last hospital discharge day (default: today)"
    )
    add_client_options(measures, json_help="print the API's report (rates with numerators and denominators) as JSON")
    measures.set_defaults(handler=_measures)

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


def run(args: argparse.Namespace, client: ApiClient) -> int:
    handler: Handler = args.handler
    return handler(args, client)


# ---- commands ----------------------------------------------------------------------------------------


def _submit(args: argparse.Namespace, client: ApiClient) -> int:
    payload = _read_resource(args.file)
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    if args.source:
        headers["X-Referral-Source"] = args.source
    response = client.request(
        "POST", INTAKE_PATHS[payload["resourceType"]], content=json.dumps(payload), headers=headers
    )
    task = body_of(response)
    coding = (task.get("businessStatus") or {}).get("coding") or [{}]
    location = response.headers.get("Location")
    result = {
        "id": task.get("id"),
        "status": task.get("status"),
        "businessStatus": coding[0].get("code"),
        # FHIR: a relative Location is relative to the service base, here /fhir.
        "location": f"{client.base_url}/fhir/{location}" if location and "://" not in location else location,
        "alreadyReceived": response.status_code == 200,
        "closed": response.headers.get("X-Referral-Closed") == "true",
    }
    if _wants_json(args):
        _print_json(result)
        return EXIT_OK
    if result["alreadyReceived"]:
        closed = " and is closed" if result["closed"] else ""
        print(f"already received: this referral was submitted before{closed}; nothing new was started")
    else:
        print("submitted: a new referral was started")
    fields = [("Task", "id"), ("status", "status"), ("businessStatus", "businessStatus"), ("Location", "location")]
    print(render.pairs([(label, str(result[key] or render.NONE)) for label, key in fields]))
    return EXIT_OK


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
    if _wants_json(args):
        _print_json(rows)
    elif rows:
        print(render.table(render.LIST_HEADERS, render.summary_rows(rows)))
    else:
        print("no referrals match", file=sys.stderr)
    if next_page := response.headers.get(NEXT_PAGE_HEADER):
        print(f"more referrals match: add --page-token {next_page} for the next page", file=sys.stderr)
    return EXIT_OK


def _show(args: argparse.Namespace, client: ApiClient) -> int:
    state = _referral_call(client, "GET", args.id)
    return _print_view(args, state)


def _attend(args: argparse.Namespace, client: ApiClient) -> int:
    session: dict[str, Any] = {
        "session_id": args.session_id,
        "date": args.date.isoformat(),
        "kind": args.kind,
        "minutes": args.minutes,
        "attended": not args.absent,
        "modality": "telehealth" if args.telehealth else "in_person",
    }
    if args.start:
        session["start_time"] = args.start.isoformat()
    if args.staff_id:
        session["staff_id"] = args.staff_id
    state = _referral_call(client, "POST", args.id, "/sessions", {"session": session})
    if _wants_json(args):
        return _print_view(args, state)
    what = "missed" if args.absent else "attended"
    print(f"recorded session {args.session_id} ({what}, {args.date.isoformat()}): {_status_line(state)}")
    return EXIT_OK


def _team(args: argparse.Namespace, client: ApiClient) -> int:
    roles = [role.replace("-", "_") for role in args.role]
    if len(roles) != len(args.member):
        raise CliError("give one --member for each --role, in the same order", EXIT_USAGE)
    if len(set(roles)) != len(roles):
        raise CliError("name each --role once", EXIT_USAGE)
    state = _referral_call(client, "POST", args.id, "/team", {"members": dict(zip(roles, args.member, strict=True))})
    if _wants_json(args):
        return _print_view(args, state)
    team = render.snapshot_view(state)["team"]
    for role in roles:
        print(f"{role.replace('_', ' ')}: {team[role]['name']} ({team[role]['id']})")
    print(_status_line(state))
    return EXIT_OK


def _discharge(args: argparse.Namespace, client: ApiClient) -> int:
    discharge: dict[str, Any] = {"reason": args.reason, "date": (args.date or date.today()).isoformat()}
    if args.to_level:
        discharge["destination_level"] = args.to_level
    if args.note:
        discharge["note"] = args.note
    state = _referral_call(client, "POST", args.id, "/discharge", {"discharge": discharge})
    if _wants_json(args):
        return _print_view(args, state)
    print(f"discharged ({args.reason}, {discharge['date']}): {_status_line(state)}")
    return EXIT_OK


def _retry_writes(args: argparse.Namespace, client: ApiClient) -> int:
    result = _referral_call(client, "POST", args.id, "/retry-writes")
    view = render.retry_view(result)
    if _wants_json(args):
        _print_json(view)
    else:
        print(render.retry_text(view))
    return EXIT_REFUSED if view["still_refused"] else EXIT_OK


def _today(args: argparse.Namespace, client: ApiClient) -> int:
    day = body_of(client.request("GET", "/api/today"))
    if _wants_json(args):
        _print_json(day)
    else:
        print(render.today_text(day))
    return EXIT_OK


def _measures(args: argparse.Namespace, client: ApiClient) -> int:
    if args.period_from and args.period_to and args.period_from > args.period_to:
        raise CliError("--from must not be after --to", EXIT_USAGE)
    params = {
        name: getattr(args, f"period_{name}").isoformat() for name in ("from", "to") if getattr(args, f"period_{name}")
    }
    report = body_of(client.request("GET", "/api/measures", params=params))
    if _wants_json(args):
        _print_json(report)
    else:
        print(render.measures_text(report))
    return EXIT_OK


def _audit(args: argparse.Namespace, client: ApiClient) -> int:
    if not 1 <= args.limit <= 1000:
        raise CliError("--limit must be between 1 and 1000", EXIT_USAGE)
    params: dict[str, str | int] = {"limit": args.limit}
    for name in ("referral", "user", "action", "since"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    rows = body_of(client.request("GET", "/api/audit", params=params))
    if _wants_json(args):
        _print_json(rows)
    elif rows:
        print(render.table(render.AUDIT_HEADERS, render.audit_rows(rows)))
    else:
        print("no audit records match", file=sys.stderr)
    return EXIT_OK


# ---- helpers -----------------------------------------------------------------------------------------


def _referral_call(
    client: ApiClient, method: str, key: str, suffix: str = "", body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One call on ``/api/referrals/{key}``; a missing referral is a refusal that names the id."""
    try:
        response = client.request(method, f"/api/referrals/{quote(key, safe='')}{suffix}", json=body)
    except CliError as error:
        if error.status == 404 and error.details == [NO_SUCH_REFERRAL]:
            raise CliError(f"no referral with id {key}", EXIT_REFUSED, status=404) from None
        raise
    state: dict[str, Any] = body_of(response)
    return state


def _print_view(args: argparse.Namespace, state: dict[str, Any]) -> int:
    view = render.snapshot_view(state)
    if _wants_json(args):
        _print_json(view)
    else:
        print(render.snapshot_text(view))
    return EXIT_OK


def _status_line(state: dict[str, Any]) -> str:
    view = render.snapshot_view(state)
    return f"phase {view['phase']}, at risk {render.yes_no(view['at_risk'])}"


def _wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _read_resource(path: Path) -> dict[str, Any]:
    """The file's FHIR resource; anything but a ServiceRequest or Bundle JSON object is a usage error."""
    try:
        payload = json.loads(path.read_bytes())
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror or error}", EXIT_USAGE) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CliError(f"{path} is not valid JSON ({error})", EXIT_USAGE) from None
    kind = payload.get("resourceType") if isinstance(payload, dict) else None
    if kind not in INTAKE_PATHS:
        raise CliError(f"{path} must hold a FHIR ServiceRequest or Bundle (resourceType), not {kind!r}", EXIT_USAGE)
    assert isinstance(payload, dict)
    return payload


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _time(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time (HH:MM): {text!r}") from None


def _level(text: str) -> dict[str, str]:
    parts = text.split(":")
    if len(parts) != 3 or parts[0] not in ("ASAM", "LOCUS") or not all(parts):
        raise argparse.ArgumentTypeError(
            f"expected FRAMEWORK:EDITION:LEVEL with ASAM or LOCUS, e.g. ASAM:3:2.5: {text!r}"
        )
    return {"framework": parts[0], "edition": parts[1], "level": parts[2]}
