"""The replay's report: printed (every FHIR interaction, then each unmet expectation), and as files to diff.

Nothing printed or written here names a patient: URLs carry resource ids and business identifiers, and the
interaction log holds no bodies. The resource Bundle holds what the service wrote (synthetic patients only).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from referral_service.replay.runner import Exchange, ScenarioResult


def print_report(results: Sequence[ScenarioResult], fhir_url: str, out: IO[str]) -> None:
    for result in results:
        print(f"\n== {result.name} ({result.file}): {result.title}", file=out)
        print(f"   referral {result.referral_key or '-'}, final phase {result.phase or '-'}", file=out)
        print(f"   FHIR interactions with {fhir_url}:", file=out)
        for line in _interaction_lines(result.exchanges):
            print(f"   {line}", file=out)
        for problem in result.problems:
            print(f"   UNMET {problem}", file=out)
    failed = [r.name for r in results if not r.passed]
    summary = f"\n{len(results)} scenarios, {len(results) - len(failed)} passed, {len(failed)} failed"
    print(summary + (f": {', '.join(failed)}" if failed else ""), file=out)


def _interaction_lines(exchanges: Sequence[Exchange]) -> list[str]:
    lines = []
    for item in exchanges:
        x = item.exchange
        status = "no answer" if x.status is None else str(x.status)
        what = f"{x.resource} v{x.version}" if x.resource and x.version else (x.resource or "")
        lines.append(f"day {item.day:<3} {x.method:<4} [base]/{x.url}  {status}  {what}".rstrip())
        for entry_status, resource, version in x.entries:
            lines.append(f"          entry {entry_status}  {resource or ''}" + (f" v{version}" if version else ""))
    return lines


def write_report(results: Sequence[ScenarioResult], fhir_url: str, run_id: str, path: Path) -> Path:
    """``path`` gets the JSON report; ``<stem>.bundle.json`` beside it the final resources as a transaction
    Bundle (conditional updates on the service's identifiers; server ids and meta left out so runs diff).
    Returns the Bundle's path."""
    report = {
        "run_id": run_id,
        "fhir_url": fhir_url,
        "passed": all(r.passed for r in results),
        "scenarios": [_scenario_json(result) for result in results],
    }
    path.write_text(json.dumps(report, indent=2) + "\n")
    bundle_path = path.with_name(f"{path.stem}.bundle.json")
    bundle_path.write_text(json.dumps(final_bundle(results), indent=2, sort_keys=True) + "\n")
    return bundle_path


def final_bundle(results: Sequence[ScenarioResult]) -> dict[str, Any]:
    entries = []
    for result in results:
        for resource in sorted(result.resources, key=lambda r: (r["resourceType"], _key(r))):
            content = {k: v for k, v in resource.items() if k not in ("id", "meta", "text")}
            url = f"{resource['resourceType']}?identifier={RESOURCE_KEY_SYSTEM}|{_key(resource)}"
            entries.append({"resource": content, "request": {"method": "PUT", "url": url}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _key(resource: dict[str, Any]) -> str:
    for identifier in resource.get("identifier") or []:
        if identifier.get("system") == RESOURCE_KEY_SYSTEM:
            return str(identifier.get("value"))
    return ""


def _scenario_json(result: ScenarioResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "title": result.title,
        "file": result.file,
        "referral_key": result.referral_key,
        "final_phase": result.phase,
        "passed": result.passed,
        "unmet": result.problems,
        "interactions": [
            {
                "day": item.day,
                "method": item.exchange.method,
                "url": item.exchange.url,
                "status": item.exchange.status,
                "resource": item.exchange.resource,
                "version": item.exchange.version,
                **(
                    {"entries": [{"status": s, "resource": r, "version": v} for s, r, v in item.exchange.entries]}
                    if item.exchange.entries
                    else {}
                ),
            }
            for item in result.exchanges
        ],
        "resources": [
            {
                "type": r["resourceType"],
                "id": r.get("id"),
                "version": (r.get("meta") or {}).get("versionId"),
                "key": _key(r),
            }
            for r in result.resources
        ],
    }
