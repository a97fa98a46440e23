"""What client commands print: aligned tables and a referral's snapshot, with patient data left out.

The snapshot the API returns carries the patient's name, birth date and identifiers. ``snapshot_view`` is an
allow-list: only ids, codes, dates of program events, staff and EHR write ids pass, so neither the text nor
the ``--json`` output of ``show`` can put a patient's details on a terminal or in a shell history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

NONE = "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart: header and rows share column starts."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in (headers, *rows)
    ]
    return "\n".join(line.rstrip() for line in lines)


def when(value: str | None, *, now: datetime | None = None, relative: bool = False) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM UTC``; with ``relative``, how far away it is."""
    if not value:
        return NONE
    moment = datetime.fromisoformat(value)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M UTC")
    if not relative:
        return text
    seconds = int((moment - (now or datetime.now(UTC))).total_seconds())
    span = _span(abs(seconds))
    return f"{text} ({'in ' + span if seconds >= 0 else span + ' ago'})"


def _span(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


def yes_no(value: Any) -> str:
    return "yes" if value else "no"


def summary_rows(summaries: list[dict[str, Any]]) -> list[list[str]]:
    """``GET /api/referrals`` rows for the list table."""
    return [
        [
            row["key"],
            person_text(row),
            row.get("referrer") or row.get("source") or NONE,
            row.get("phase") or NONE,
            row.get("track") or NONE,
            yes_no(row.get("at_risk")),
            when(row.get("next_deadline")),
            str(row.get("refused_writes") or 0),
        ]
        for row in summaries
    ]


LIST_HEADERS = ("ID", "PATIENT", "REFERRER", "PHASE", "TRACK", "AT-RISK", "NEXT DEADLINE", "REFUSED")


def person_text(row: dict[str, Any]) -> str:
    """A list row's patient as the API showed it: "Ada Testpatient, 42, female, MRN x, 555-..." (what the role
    sees), ``unreadable`` when the row's sealed details did not open."""
    if not row.get("readable", True):
        return "unreadable"
    person = row.get("patient") or {}
    name = " ".join([*person.get("given", []), person.get("family") or ""]).strip()
    facts = [
        name,
        str(person["age"]) if person.get("age") is not None else "",
        person.get("gender") or "",
        f"MRN {person['mrn']}" if person.get("mrn") else "",
        person.get("phone") or "",
    ]
    return ", ".join(fact for fact in facts if fact) or NONE


MEASURES_HEADERS = (
    "ACCEPTED",
    "FOLLOW-UP 7D",
    "FOLLOW-UP 30D",
    "MEDIAN DAYS",
    "WEEKS AT MIN",
    "COMPLETED",
    "DROPPED OUT",
    "FOLLOW-UPS REACHED",
)
_RATES = ("follow_up_7_days", "follow_up_30_days", "weeks_meeting_minimum", "completed", "dropped_out")


AUDIT_HEADERS = ("TIME", "USER", "ROLES", "FROM", "ACTION", "REFERRAL", "STATUS", "OUTCOME")


def audit_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    """``GET /api/audit`` records as table rows (ids, codes and route templates only)."""
    return [
        [
            datetime.fromisoformat(r["at"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),  # to the second
            r["user"] or NONE,
            ",".join(r["roles"]) or NONE,
            r["client"] or NONE,
            r["action"],
            r["referral_key"] or NONE,
            str(r["status"]),
            r["outcome"],
        ]
        for r in records
    ]


def rate_text(rate: dict[str, Any]) -> str:
    """``33% (1/3)``, ``no data (0/0)`` when the denominator is empty, ``+2 pending`` when some are."""
    shown = "no data" if rate.get("rate") is None else f"{round(rate['rate'] * 100)}%"
    pending = f" +{rate['pending']} pending" if rate.get("pending") else ""
    return f"{shown} ({rate['numerator']}/{rate['denominator']}){pending}"


def measures_rows(groups: list[dict[str, Any]]) -> list[list[str]]:
    """One row per group (a track, a source, or ``all``) of ``GET /api/measures``."""
    rows = []
    for group in groups:
        median = group.get("median_days_to_first_session")
        rows.append(
            [
                group["group"],
                str(group["referrals"]),
                *(rate_text(group[name]) for name in _RATES[:2]),
                f"{'no data' if median is None else f'{median:g}'} (n={group['first_sessions']})",
                *(rate_text(group[name]) for name in _RATES[2:]),
                rate_text(group["follow_ups_reached"]),
            ]
        )
    return rows


def measures_text(report: dict[str, Any]) -> str:
    """The report as two aligned tables, by track and by source, each closed by the ``all`` row."""
    out = [
        f"Quality measures: accepted referrals discharged from hospital {report['period_from']} to "
        f"{report['period_to']} (as of {report['as_of']})",
        "Follow-up: first attended session 1-7 / 1-30 days after hospital discharge (the discharge day does not "
        "count). Completed and dropped out: of program discharges.",
    ]
    for title, groups in (("TRACK", report["by_track"]), ("SOURCE", report["by_source"])):
        out += ["", table((title, *MEASURES_HEADERS), measures_rows([*groups, report["overall"]]))]
    if report.get("unreadable"):
        out += ["", f"note: {report['unreadable']} referrals could not be read (no worker answered) and are left out"]
    if report.get("scan_limit_reached"):
        out += ["note: the scan limit was reached; the oldest referrals were not read"]
    return "\n".join(out)


def snapshot_view(state: dict[str, Any]) -> dict[str, Any]:
    """The parts of a referral's snapshot a terminal may show (no patient name, birth date or identifier)."""
    referral = state.get("referral") or {}
    team = state.get("team") or {}
    discharge = state.get("discharge")
    return {
        "key": state.get("key"),
        "phase": state.get("phase"),
        "task_status": state.get("task_status"),
        "track": state.get("track_id"),
        "source": referral.get("source_id"),
        "order_number": (referral.get("placer_identifier") or {}).get("value"),
        "intake_warnings": list(referral.get("warnings") or []),  # fixed texts of ours: no patient data
        "priority": referral.get("priority"),
        "from_setting": (referral.get("discharge") or {}).get("from_setting"),
        "received_at": state.get("received_at"),
        "intake_at": state.get("intake_at"),
        "decline_reason": state.get("decline_reason"),
        "at_risk": bool(state.get("at_risk")),
        "overdue": list(state.get("overdue") or []),
        "next_deadline": state.get("next_deadline"),
        "team": {
            role: {"id": member.get("id"), "name": member.get("name")}
            for role, member in (team.get("members") or {}).items()
        },
        # Each assignment in turn (the current one last): when it took effect, staff id by role.
        "team_history": [
            {
                "assigned_at": entry.get("assigned_at"),
                "members": {role: m.get("id") for role, m in (entry.get("members") or {}).items()},
            }
            for entry in state.get("team_history") or []
        ],
        "sessions": [
            {k: s.get(k) for k in ("session_id", "date", "kind", "minutes", "attended", "modality")}
            for s in state.get("sessions") or []
        ],
        "discharge": ({k: discharge.get(k) for k in ("reason", "date", "destination_level")} if discharge else None),
        "follow_ups": [{k: f.get(k) for k in ("day", "due", "reached")} for f in state.get("follow_ups") or []],
        "ehr_writes": [
            {k: w.get(k) for k in ("resource_type", "id", "version", "created")}
            for w in (state.get("writes") or {}).values()
        ],
        "refused_writes": [refusal_view(r) for r in (state.get("refused") or {}).values()],
        "timeline": [{k: e.get(k) for k in ("at", "event", "detail")} for e in state.get("timeline") or []],
        # Parts of the snapshot the API left out for the caller's role (README "Access", minimum necessary).
        "withheld": list((state.get("view") or {}).get("withheld") or []),
    }


def refusal_view(refused: dict[str, Any]) -> dict[str, Any]:
    """A refused write as shown: what the EHR said (codes and PHI-free descriptions), when, what stood in."""
    fallback = refused.get("fallback")
    instead = refused.get("fallback_refusal")
    return {
        **{
            k: refused.get(k)
            for k in ("key", "resource_type", "status", "summary", "codes", "issues", "at", "attempts")
        },
        "fallback": {k: fallback.get(k) for k in ("resource_type", "id", "version")} if fallback else None,
        "fallback_refused": {k: instead.get(k) for k in ("resource_type", "status", "codes")} if instead else None,
    }


def retry_view(result: dict[str, Any]) -> dict[str, Any]:
    """``POST /api/referrals/{id}/retry-writes``: what the EHR took, and what it refused again."""
    return {
        "succeeded": [{k: w.get(k) for k in ("key", "resource_type", "id", "version")} for w in result["succeeded"]],
        "still_refused": [refusal_view(r) for r in result["still_refused"]],
    }


def retry_text(view: dict[str, Any]) -> str:
    lines = [f"written: {w['resource_type']}/{w['id']} ({w['key']})" for w in view["succeeded"]]
    lines += [f"still refused: {_refusal_line(r)}" for r in view["still_refused"]]
    return "\n".join(lines or ["nothing was sent"])


def _refusal_line(refused: dict[str, Any]) -> str:
    said = "; ".join(refused["issues"]) or refused["summary"]
    line = f"{refused['resource_type']} HTTP {refused['status'] or NONE} ({said})"
    if refused["fallback"]:
        line += f", a {refused['fallback']['resource_type']} note written instead"
    elif refused["fallback_refused"]:
        line += f", the {refused['fallback_refused']['resource_type']} note instead refused too"
    return line


def snapshot_text(view: dict[str, Any]) -> str:
    """``snapshot_view`` for people: the facts, the team by role, sessions, timeline and EHR writes."""
    facts = [
        ("phase", f"{view['phase']}  (referrer's Task: {view['task_status']})"),
        ("track", view["track"] or NONE),
        ("source", view["source"] or NONE),
        ("order number", view["order_number"] or NONE),
        ("coming from", view["from_setting"] or NONE),
        ("received", when(view["received_at"])),
        ("intake", when(view["intake_at"])),
        ("at risk", yes_no(view["at_risk"])),
        ("next deadline", when(view["next_deadline"], relative=True)),
        ("overdue", ", ".join(view["overdue"]) or "none"),
    ]
    if view["decline_reason"]:
        facts.append(("declined", view["decline_reason"]))
    if view["discharge"]:
        discharge = view["discharge"]
        facts.append(("discharged", f"{discharge['reason']} on {discharge['date']}"))
    out = [f"Referral {view['key']}", pairs(facts)]
    withheld = set(view["withheld"])
    if withheld:
        out.append("not shown to your role: " + ", ".join(sorted(w.replace("_", " ") for w in withheld)))
    if "team" not in withheld:
        out += _section("Team", [[role, m["name"] or NONE, m["id"] or NONE] for role, m in view["team"].items()])
    if "care" not in withheld:
        out += _care_sections(view)
    out += _section("Timeline", [[when(e["at"]), e["event"], e["detail"] or ""] for e in view["timeline"]])
    if "ehr_writes" not in withheld:
        out += _section(
            "EHR writes",
            [
                [
                    w["resource_type"],
                    w["id"],
                    f"version {w['version'] or NONE}",
                    "created" if w["created"] else "updated",
                ]
                for w in view["ehr_writes"]
            ],
            empty="none yet",
        )
    if view["intake_warnings"]:
        out += _section("Taken in with warnings", [[warning] for warning in view["intake_warnings"]])
    if view["refused_writes"]:
        out += _section(
            "Refused by the EHR (retry with `referral-service retry-writes`)",
            [[when(r["at"]), _refusal_line(r), f"{r['attempts']} attempt(s)"] for r in view["refused_writes"]],
        )
    return "\n".join(out)


def _created(write: dict[str, Any]) -> str:
    return "created" if write["created"] else "updated"


def _care_sections(view: dict[str, Any]) -> list[str]:
    out = _section(
        "Sessions",
        [
            [s["date"], s["kind"], f"{s['minutes']} min", "attended" if s["attended"] else "missed", s["session_id"]]
            for s in view["sessions"]
        ],
    )
    out += _section(
        "Follow-ups",
        [
            [f"day {f['day']}", f"due {f['due']}", {True: "reached", False: "not reached"}.get(f["reached"], "pending")]
            for f in view["follow_ups"]
        ],
    )
    return out


def pairs(facts: list[tuple[str, str]]) -> str:
    """``label  value`` lines, values aligned."""
    width = max(len(label) for label, _ in facts)
    return "\n".join(f"  {label.ljust(width)}  {value}" for label, value in facts)


def _section(title: str, rows: list[list[str]], *, empty: str = "none") -> list[str]:
    if not rows:
        return [f"{title}: {empty}"]
    widths = [max(len(str(cell)) for cell in column) for column in zip(*rows, strict=True)]
    lines = ["  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return [f"{title}:", *lines]


# "My day"'s lists of referrals, in the order ``today`` prints them: (title, field, what the date means).
DAY_LISTS = (
    ("First sessions due", "first_sessions", "by"),
    ("Follow-up calls due", "follow_ups", "due"),
    ("Outreach", "outreach", "missed"),
    ("At risk or overdue", "at_risk_or_overdue", ""),
)


def today_text(day: dict[str, Any]) -> str:
    """``GET /api/today`` as text: each group with its expected referrals, then each list as a table."""
    whose = f"{day['member']}'s caseload" if day["member"] else "everyone's caseload"
    out = [f"My day: {day['day']}, {whose}", "", "Today's groups:"]
    for group in day["groups"]:
        out.append(f"  {group['name']} ({group['track_id']}) at {group['start_hour']:02d}:00, {group['minutes']} min")
        out += [f"    {key}" for key in group["roster"]] or ["    nobody expected"]
    if not day["groups"]:
        out.append("  none")
    for title, field, due in DAY_LISTS:
        items = day[field]
        rows = [
            [
                i["key"],
                i["track_id"] or "-",
                i["phase"],
                f"{due} {i['due']}" if i["due"] else "-",
                ", ".join(i["flags"]),
            ]
            for i in items
        ]
        body = table(("Referral", "Track", "Phase", "Date", "Flags"), rows) if rows else "none"
        out += ["", f"{title}:", body]
    return "\n".join(out)
