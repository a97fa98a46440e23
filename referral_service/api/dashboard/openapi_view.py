"""The API reference page, computed from the OpenAPI document: pure functions, no I/O.

``/docs`` renders the document server-side as plain HTML, so it needs no script at all (no CDN, nothing for the
Content-Security-Policy to allow); ``/openapi.json`` serves the document itself to tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    description: str
    where: str = ""  # a parameter's place: path, query, header


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    anchor: str
    summary: str
    description: str
    parameters: list[Field]
    body: str  # the request body's type, empty when it takes none
    responses: list[tuple[str, str]]  # (status, description)


@dataclass(frozen=True)
class Schema:
    name: str
    description: str
    fields: list[Field]


@dataclass(frozen=True)
class Reference:
    title: str
    version: str
    description: str
    groups: list[tuple[str, list[Operation]]]  # by tag, in the document's order
    schemas: list[Schema]


def type_text(schema: dict[str, Any]) -> str:
    """A schema as a reader says it: ``ReferralState``, ``list of string``, ``string | null``, ``one of a, b``."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for combined in ("anyOf", "oneOf", "allOf"):
        if combined in schema:
            return " | ".join(type_text(part) for part in schema[combined])
    if "enum" in schema:
        return "one of " + ", ".join(str(value) for value in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {type_text(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return f"map of {type_text(schema['additionalProperties'])}"
    return f"{kind} ({schema['format']})" if "format" in schema else str(kind)


def reference(document: dict[str, Any]) -> Reference:
    """Operations grouped by their first tag, then every named schema with its properties."""
    groups: dict[str, list[Operation]] = {}
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                spec = item[method]
                groups.setdefault((spec.get("tags") or ["other"])[0], []).append(_operation(method, path, spec))
    schemas = [
        Schema(
            name=name,
            description=spec.get("description", ""),
            fields=[
                Field(prop, type_text(sub), prop in spec.get("required", ()), sub.get("description", ""))
                for prop, sub in spec.get("properties", {}).items()
            ],
        )
        for name, spec in sorted(document.get("components", {}).get("schemas", {}).items())
    ]
    info = document.get("info", {})
    return Reference(
        title=info.get("title", ""),
        version=info.get("version", ""),
        description=info.get("description", ""),
        groups=list(groups.items()),
        schemas=schemas,
    )


def _operation(method: str, path: str, spec: dict[str, Any]) -> Operation:
    content: dict[str, dict[str, Any]] = spec.get("requestBody", {}).get("content", {})
    body_schema = next(iter(content.values()), {}).get("schema")
    return Operation(
        method=method.upper(),
        path=path,
        anchor=spec.get("operationId", f"{method}-{path}"),
        summary=spec.get("summary", ""),
        description=spec.get("description", ""),
        parameters=[
            Field(
                p["name"],
                type_text(p.get("schema", {})),
                bool(p.get("required")),
                p.get("description", ""),
                p.get("in", ""),
            )
            for p in spec.get("parameters", [])
        ],
        body=type_text(body_schema) if body_schema is not None else "",
        responses=[(status, answer.get("description", "")) for status, answer in spec.get("responses", {}).items()],
    )
