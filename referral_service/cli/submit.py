"""``submit``: a referral (a FHIR ServiceRequest or Bundle JSON file) to the intake endpoint."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from referral_service.cli import render
from referral_service.cli.api_client import EXIT_OK, EXIT_USAGE, FHIR_JSON, ApiClient, CliError, body_of
from referral_service.cli.options import add_client_options, print_json, wants_json

INTAKE_PATHS = {"ServiceRequest": "/fhir/ServiceRequest", "Bundle": "/fhir"}


def add(commands: Any) -> None:
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
    if wants_json(args):
        print_json(result)
        return EXIT_OK
    if result["alreadyReceived"]:
        closed = " and is closed" if result["closed"] else ""
        print(f"already received: this referral was submitted before{closed}; nothing new was started")
    else:
        print("submitted: a new referral was started")
    fields = [("Task", "id"), ("status", "status"), ("businessStatus", "businessStatus"), ("Location", "location")]
    print(render.pairs([(label, str(result[key] or render.NONE)) for label, key in fields]))
    return EXIT_OK


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
