"""One referral: ``show`` it, record a session (``attend``), reassign its ``team``, ``discharge`` it, send the writes
the EHR refused again (``retry-writes``)."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any
from urllib.parse import quote

from referral_service.cli import render
from referral_service.cli.api_client import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, ApiClient, CliError, body_of
from referral_service.cli.options import add_client_options, date_arg, level_arg, print_json, time_arg, wants_json
from referral_service.domain.discharge import DischargeReason
from referral_service.domain.program import SessionKind, StaffRole

NO_SUCH_REFERRAL = "no such referral"  # the API's 404 detail, told apart from a wrong URL's 404
ROLE_NAMES = [role.value.replace("_", "-") for role in StaffRole]


def add(commands: Any) -> None:
    _show_command(commands)
    _attend_command(commands)
    _team_command(commands)
    _discharge_command(commands)
    _retry_writes_command(commands)


def _show_command(commands: Any) -> None:
    show = commands.add_parser(
        "show",
        help="show one referral: phase, track, team, deadlines, sessions, timeline, EHR writes and refusals",
        description="A referral's current state, without patient details (no name, birth date or identifiers).",
    )
    show.add_argument("id", metavar="ID", help="the referral id (the Task id `submit` printed)")
    add_client_options(show, json_help="print the same (patient-free) view as JSON")
    show.set_defaults(handler=_show)


def _show(args: argparse.Namespace, client: ApiClient) -> int:
    state = _referral_call(client, "GET", args.id)
    return _print_view(args, state)


def _attend_command(commands: Any) -> None:
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
    attend.add_argument("--date", required=True, type=date_arg, metavar="YYYY-MM-DD", help="the session's date")
    attend.add_argument("--kind", required=True, choices=[str(k) for k in SessionKind], help="the kind of session")
    attend.add_argument("--minutes", required=True, type=int, metavar="N", help="the session's length (1-600)")
    attend.add_argument("--start", type=time_arg, metavar="HH:MM", help="start time (default 09:00)")
    attend.add_argument("--telehealth", action="store_true", help="the session was by telehealth (default: in person)")
    attend.add_argument("--staff-id", metavar="ID", help="the staff member who ran it")
    attend.add_argument("--absent", action="store_true", help="the patient missed the session")
    add_client_options(attend, json_help="print the referral's updated (patient-free) view as JSON")
    attend.set_defaults(handler=_attend)


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
    if wants_json(args):
        return _print_view(args, state)
    what = "missed" if args.absent else "attended"
    print(f"recorded session {args.session_id} ({what}, {args.date.isoformat()}): {_status_line(state)}")
    return EXIT_OK


def _team_command(commands: Any) -> None:
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


def _team(args: argparse.Namespace, client: ApiClient) -> int:
    roles = [role.replace("-", "_") for role in args.role]
    if len(roles) != len(args.member):
        raise CliError("give one --member for each --role, in the same order", EXIT_USAGE)
    if len(set(roles)) != len(roles):
        raise CliError("name each --role once", EXIT_USAGE)
    state = _referral_call(client, "POST", args.id, "/team", {"members": dict(zip(roles, args.member, strict=True))})
    if wants_json(args):
        return _print_view(args, state)
    team = render.snapshot_view(state)["team"]
    for role in roles:
        print(f"{role.replace('_', ' ')}: {team[role]['name']} ({team[role]['id']})")
    print(_status_line(state))
    return EXIT_OK


def _discharge_command(commands: Any) -> None:
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
        "--date", type=date_arg, metavar="YYYY-MM-DD", help="discharge date (default: today on this computer)"
    )
    discharge.add_argument(
        "--to-level",
        metavar="FRAMEWORK:EDITION:LEVEL",
        type=level_arg,
        help="for --reason transferred: the level of care the patient goes to, e.g. ASAM:3:2.5",
    )
    discharge.add_argument("--note", help="a short note (do not put patient details here)")
    add_client_options(discharge, json_help="print the referral's updated (patient-free) view as JSON")
    discharge.set_defaults(handler=_discharge)


def _discharge(args: argparse.Namespace, client: ApiClient) -> int:
    discharge: dict[str, Any] = {"reason": args.reason, "date": (args.date or date.today()).isoformat()}
    if args.to_level:
        discharge["destination_level"] = args.to_level
    if args.note:
        discharge["note"] = args.note
    state = _referral_call(client, "POST", args.id, "/discharge", {"discharge": discharge})
    if wants_json(args):
        return _print_view(args, state)
    print(f"discharged ({args.reason}, {discharge['date']}): {_status_line(state)}")
    return EXIT_OK


def _retry_writes_command(commands: Any) -> None:
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


def _retry_writes(args: argparse.Namespace, client: ApiClient) -> int:
    result = _referral_call(client, "POST", args.id, "/retry-writes")
    view = render.retry_view(result)
    if wants_json(args):
        print_json(view)
    else:
        print(render.retry_text(view))
    return EXIT_REFUSED if view["still_refused"] else EXIT_OK


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
    if wants_json(args):
        print_json(view)
    else:
        print(render.snapshot_text(view))
    return EXIT_OK


def _status_line(state: dict[str, Any]) -> str:
    view = render.snapshot_view(state)
    return f"phase {view['phase']}, at risk {render.yes_no(view['at_risk'])}"
