"""A thin async FHIR R4 REST client over httpx: one pooled connection set per source.

Every method names the section of https://hl7.org/fhir/R4/http.html it implements. Resources travel
as plain JSON dicts. Nothing here logs or puts resource bodies or search values into error messages.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote

import httpx
from opentelemetry.trace import SpanKind, get_tracer

from referral_service.ehr.errors import PermanentError, TransientError, error_from_response
from referral_service.ehr.responses import (
    WriteResult,
    check_id,
    check_type,
    etag_version,
    expect_resource,
    json_body,
    meta_version,
    parse_location,
)
from referral_service.ehr.source import SourceConfig

_TRACER = get_tracer(__name__)  # a no-op until the process configures tracing (referral_service.tracing)

SearchParams = Mapping[str, str | Sequence[str]]
"""Search parameters as strings; a sequence repeats the name:
``{"identifier": "sys|val", "_lastUpdated": ["ge2026-01-01", "lt2026-02-01"]}``."""

FHIR_JSON = "application/fhir+json"
_DEFAULT_HEADERS = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON}
_RETURN_REPRESENTATION = {"Prefer": "return=representation"}
_NO_CACHE = {"Cache-Control": "no-cache"}


@dataclass(frozen=True, slots=True)
class FhirExchange:
    """One request and its answer, as an observer sees it: no bodies, no headers, so no patient data.

    ``url`` is relative to the base (query included): resource ids and business identifiers only, since the
    service searches and writes by its own identifiers. ``resource`` is ``Type/id`` with ``version`` from
    ``Location``/``ETag`` or the returned resource; a transaction lists its entries' outcomes instead.
    """

    method: str
    url: str
    status: int | None  # None: no answer (connection failed or timed out)
    resource: str | None = None
    version: str | None = None
    entries: tuple[tuple[str, str | None, str | None], ...] = ()  # (status, Type/id, version) per entry


ExchangeObserver = Callable[[FhirExchange], None]


class FhirClient:
    """Async client for one FHIR R4 server (a ``SourceConfig``). Use ``async with`` or call ``aclose()``.

    Errors are ``referral_service.ehr.errors.FhirError`` subclasses; transport failures and timeouts are
    ``TransientError``. ``transport`` is for tests (``httpx.MockTransport``); ``observer`` is called with
    every exchange (the scenario replay reports them).
    """

    def __init__(
        self,
        source: SourceConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        observer: ExchangeObserver | None = None,
    ) -> None:
        self.source = source
        self._observer = observer
        self._base = httpx.URL(source.base_url)
        self._http = httpx.AsyncClient(
            base_url=source.base_url + "/",
            auth=source.auth,
            timeout=httpx.Timeout(source.timeout_seconds),
            headers=_DEFAULT_HEADERS,
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    # -- reads -------------------------------------------------------------------------------------

    async def read(self, resource_type: str, id: str) -> dict[str, Any]:
        """Read the current version: ``GET [base]/[type]/[id]`` (https://hl7.org/fhir/R4/http.html#read).

        A missing or deleted resource is ``NotFoundError``.
        """
        response = await self._send("GET", f"{check_type(resource_type)}/{check_id(id)}")
        return expect_resource(response, resource_type)

    async def vread(self, resource_type: str, id: str, version: str) -> dict[str, Any]:
        """Read one version: ``GET [base]/[type]/[id]/_history/[vid]`` (https://hl7.org/fhir/R4/http.html#vread)."""
        path = f"{check_type(resource_type)}/{check_id(id)}/_history/{check_id(version)}"
        return expect_resource(await self._send("GET", path), resource_type)

    async def search(self, resource_type: str, params: SearchParams) -> list[dict[str, Any]]:
        """Every resource matching a search, across all pages (https://hl7.org/fhir/R4/http.html#search).

        Only entries with ``search.mode`` ``match`` (or no mode) are returned; ``_include``d resources and
        outcome entries are left out. Use ``search_pages`` to see whole Bundles.
        """
        matches: list[dict[str, Any]] = []
        async for bundle in self.search_pages(resource_type, params):
            matches.extend(_matches(bundle))
        return matches

    async def search_pages(self, resource_type: str, params: SearchParams) -> AsyncIterator[dict[str, Any]]:
        """Each searchset Bundle of a search: ``GET [base]/[type]?params``, then ``link[relation=next]`` as
        the server gives it (https://hl7.org/fhir/R4/http.html#search, https://hl7.org/fhir/R4/http.html#paging).

        Sends ``Cache-Control: no-cache`` so the server does not answer from a cached result set. A next
        link must stay on the source's scheme, host and port (credentials are never sent elsewhere).
        """
        url: str = check_type(resource_type)
        query: httpx.QueryParams | None = _query(params)
        seen: set[str] = set()
        while True:
            bundle = expect_resource(await self._send("GET", url, params=query, headers=_NO_CACHE), "Bundle")
            yield bundle
            next_url = _next_link(bundle)
            if next_url is None:
                return
            url, query = self._same_origin(next_url), None
            if url in seen:
                raise PermanentError("server repeated a paging link")
            seen.add(url)

    async def capabilities(self) -> dict[str, Any]:
        """The server's CapabilityStatement: ``GET [base]/metadata`` (https://hl7.org/fhir/R4/http.html#capabilities)."""
        return expect_resource(await self._send("GET", "metadata"), "CapabilityStatement")

    # -- writes ------------------------------------------------------------------------------------

    async def create(self, resource: Mapping[str, Any]) -> WriteResult:
        """Create with a server-assigned id: ``POST [base]/[type]`` (https://hl7.org/fhir/R4/http.html#create)."""
        resource_type = _type_of(resource)
        response = await self._send("POST", resource_type, body=resource, headers=_RETURN_REPRESENTATION)
        return await self._write_result(response, resource_type)

    async def create_if_none_exist(self, resource: Mapping[str, Any], criteria: str | SearchParams) -> WriteResult:
        """Conditional create: ``POST [base]/[type]`` with ``If-None-Exist: [criteria]``
        (https://hl7.org/fhir/R4/http.html#ccreate).

        201: created (``created=True``); 200: one resource already matched, returned with ``created=False``
        (read through ``Location`` when the server sends no body); 412 (several match) and 409 (a
        concurrent identical create won) raise ``ConflictError``. ``criteria`` is a query string such as
        ``identifier=sys|val`` (unescaped values) or a mapping like ``search`` takes.
        """
        resource_type = _type_of(resource)
        headers = {**_RETURN_REPRESENTATION, "If-None-Exist": str(_criteria(criteria))}
        response = await self._send("POST", resource_type, body=resource, headers=headers)
        return await self._write_result(response, resource_type)

    async def update_conditional(self, resource: Mapping[str, Any], criteria: str | SearchParams) -> WriteResult:
        """Conditional update: ``PUT [base]/[type]?[criteria]`` (https://hl7.org/fhir/R4/http.html#cond-update).

        No match: created (201, ``created=True``); one match: updated (200); several: 412 ``ConflictError``.
        """
        resource_type = _type_of(resource)
        response = await self._send(
            "PUT", resource_type, params=_criteria(criteria), body=resource, headers=_RETURN_REPRESENTATION
        )
        return await self._write_result(response, resource_type)

    async def update(self, resource: Mapping[str, Any], *, if_match_version: str | None) -> WriteResult:
        """Update by id: ``PUT [base]/[type]/[id]`` (https://hl7.org/fhir/R4/http.html#update), guarded by
        ``If-Match: W/"[version]"`` when ``if_match_version`` is given (https://hl7.org/fhir/R4/http.html#concurrency).

        A stale version raises ``ConflictError`` (HAPI answers 409, the spec 412). ``None`` overwrites
        whatever is current: pass it only on purpose. An unchanged resource makes no new version on HAPI.
        """
        resource_type = _type_of(resource)
        resource_id = resource.get("id")
        if not isinstance(resource_id, str):
            raise ValueError("update needs a resource with an id")
        headers = dict(_RETURN_REPRESENTATION)
        if if_match_version is not None:
            headers["If-Match"] = f'W/"{check_id(etag_version(if_match_version) or "")}"'
        path = f"{resource_type}/{check_id(resource_id)}"
        response = await self._send("PUT", path, body=resource, headers=headers)
        return await self._write_result(response, resource_type)

    async def transaction(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        """Send a ``transaction`` (or ``batch``) Bundle: ``POST [base]`` (https://hl7.org/fhir/R4/http.html#transaction).

        Returns the response Bundle, whose entries follow the request order. A transaction is all or
        nothing: any failing entry fails the whole request with the matching ``FhirError``.
        """
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") not in ("transaction", "batch"):
            raise ValueError("transaction needs a Bundle of type transaction or batch")
        response = await self._send("POST", self.source.base_url, body=bundle, headers=_RETURN_REPRESENTATION)
        return expect_resource(response, "Bundle")

    # -- plumbing ----------------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: httpx.QueryParams | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One request, traced; error statuses become ``FhirError``s, transport failures ``TransientError``.

        The span names the source, method, resource type and status only: never the URL, whose search
        parameters may carry a patient's identifier.
        """
        throttle = self.source.throttle
        async with throttle.call() if throttle is not None else contextlib.nullcontext():
            return await self._send_now(method, url, params=params, body=body, headers=headers)

    async def _send_now(
        self,
        method: str,
        url: str,
        *,
        params: httpx.QueryParams | None,
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        content = json.dumps(body).encode() if body is not None else None
        resource_type = self._relative(httpx.URL(url)).split("/", 1)[0].split("?", 1)[0] or "(base)"
        with _TRACER.start_as_current_span(
            f"FHIR {method} {resource_type}",
            kind=SpanKind.CLIENT,
            attributes={
                "fhir.source": self.source.id,
                "http.request.method": method,
                "fhir.resource_type": resource_type,
            },
        ) as span:
            try:
                response = await self._http.request(method, url, params=params, content=content, headers=headers)
            except httpx.RequestError as exc:
                where = httpx.URL(url).path or "/"
                if self._observer is not None:
                    self._observer(FhirExchange(method, self._relative(exc.request.url), None))
                raise TransientError(f"{type(exc).__name__} on {method} {where}") from exc
            span.set_attribute("http.response.status_code", response.status_code)
        if self._observer is not None:
            self._observer(_exchange(method, self._relative(response.request.url), response))
        if response.status_code >= 300:
            error = error_from_response(response)
            if isinstance(error, TransientError) and error.retry_after and self.source.throttle is not None:
                # Every call to this source waits it out, not just this one's retry.
                await self.source.throttle.hold_off(error.retry_after)
            raise error
        return response

    async def _write_result(self, response: httpx.Response, resource_type: str) -> WriteResult:
        """A ``WriteResult`` from a 200/201 write response; reads the resource via ``Location`` when the
        server returned no representation."""
        body = json_body(response)
        resource = body if body is not None and body.get("resourceType") == resource_type else None
        location = parse_location(response.headers.get("Location") or response.headers.get("Content-Location"))
        resource_id = (resource or {}).get("id") or (location.id if location else None)
        if not isinstance(resource_id, str):
            raise PermanentError("write response names no resource id", status=response.status_code)
        version = etag_version(response.headers.get("ETag")) or (location.version if location else None)
        if resource is None:
            resource = await (
                self.vread(resource_type, resource_id, version) if version else self.read(resource_type, resource_id)
            )
        return WriteResult(
            created=response.status_code == httpx.codes.CREATED,
            resource_type=resource_type,
            id=resource_id,
            version=version or meta_version(resource),
            resource=resource,
        )

    def _relative(self, url: httpx.URL) -> str:
        """``url`` without the base, query included and decoded (empty for the base itself: a transaction)."""
        path = unquote(url.raw_path.decode("ascii"))
        base = self._base.raw_path.decode("ascii").rstrip("/")
        return path[len(base) :].lstrip("/") if path.startswith(base) else path

    def _same_origin(self, link: str) -> str:
        """``link`` resolved against the base; refused if it leaves the source's scheme, host or port."""
        url = self._base.join(link)
        if (url.scheme, url.host, url.port) != (self._base.scheme, self._base.host, self._base.port):
            raise PermanentError("paging link points outside the source's base URL")
        return str(url)


def _exchange(method: str, url: str, response: httpx.Response) -> FhirExchange:
    """What an observer may see of a response: status, and the ids and versions it names."""
    status = response.status_code
    body = _json_or_none(response) or {}
    resource_type = body.get("resourceType")
    if resource_type == "Bundle" and body.get("type") in ("transaction-response", "batch-response"):
        return FhirExchange(method, url, status, entries=_entry_outcomes(body))
    version = etag_version(response.headers.get("ETag"))
    location = parse_location(response.headers.get("Location") or response.headers.get("Content-Location"))
    if location is not None:
        return FhirExchange(method, url, status, f"{location.resource_type}/{location.id}", version or location.version)
    if isinstance(resource_type, str) and resource_type not in ("Bundle", "OperationOutcome") and body.get("id"):
        return FhirExchange(method, url, status, f"{resource_type}/{body['id']}", version or meta_version(body))
    return FhirExchange(method, url, status)


def _entry_outcomes(bundle: Mapping[str, Any]) -> tuple[tuple[str, str | None, str | None], ...]:
    outcomes = []
    for entry in bundle.get("entry") or []:
        answer = (entry.get("response") or {}) if isinstance(entry, dict) else {}
        location = parse_location(answer.get("location"))
        resource = f"{location.resource_type}/{location.id}" if location else None
        outcomes.append((str(answer.get("status", "")), resource, location.version if location else None))
    return tuple(outcomes)


def _json_or_none(response: httpx.Response) -> dict[str, Any] | None:
    try:
        return json_body(response)
    except PermanentError:
        return None


def _type_of(resource: Mapping[str, Any]) -> str:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise ValueError("a resource needs a resourceType")
    return check_type(resource_type)


def _query(params: SearchParams) -> httpx.QueryParams:
    """Search parameters to a query; a sequence value repeats the parameter (``AND`` in FHIR search)."""
    items: list[tuple[str, str]] = []
    for name, value in params.items():
        values = [value] if isinstance(value, str) else list(value)
        items.extend((name, v) for v in values)
    return httpx.QueryParams(tuple(items))


def _criteria(criteria: str | SearchParams) -> httpx.QueryParams:
    """Conditional-write criteria as a query. Empty criteria are refused: they would turn a conditional
    write into a plain one."""
    query = httpx.QueryParams(criteria.lstrip("?")) if isinstance(criteria, str) else _query(criteria)
    if not query:
        raise ValueError("conditional criteria must not be empty")
    return query


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def _matches(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    matches = []
    for entry in bundle.get("entry") or []:
        mode = (entry.get("search") or {}).get("mode", "match")
        if mode == "match" and isinstance(entry.get("resource"), dict):
            matches.append(entry["resource"])
    return matches
