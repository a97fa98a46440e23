"""The referral read model's table: rows written by each referral's workflow (newest version wins), read by
lists, boards, caseloads and measures without asking any workflow."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Engine, Row, Text, and_, cast, delete, func, or_, select, tuple_
from sqlalchemy.sql.dml import ReturningInsert

from referral_service.domain.measures import MeasureFacts
from referral_service.domain.patient_match import name_search_keys
from referral_service.domain.referral_row import ReferralRow, RowPerson, RowVersion
from referral_service.store.database import insert_into
from referral_service.store.sealing import Sealer
from referral_service.store.tables import referrals

_PLAIN = [
    column.name
    for column in referrals.columns
    if column.name
    not in (
        "key",
        "version_at",
        "version_event",
        "measures",
        "person_sealed",
        "name_keys",
        "received_at",
        "next_deadline",
        "possible_duplicates",
    )
]


@dataclass(frozen=True)
class StoredRow:
    """A row as read back: ``row.person`` empty and ``readable`` False when its seal does not open."""

    row: ReferralRow
    readable: bool


@dataclass(frozen=True)
class MeasureFactsRead:
    """The measure facts of rows discharged in a period, and how many rows' facts did not parse (written by
    another version of the service): those are left out."""

    facts: list[MeasureFacts]
    unreadable: int


@dataclass(frozen=True)
class RowQuery:
    open_only: bool = True
    phases: Sequence[str] = ()
    track_id: str | None = None
    source_id: str | None = None
    at_risk: bool | None = None
    name: str | None = None  # every word must be a word of the patient's name
    key_contains: str | None = None
    text: str | None = None  # a search box: ``name`` or ``key_contains`` (the order number is in the key)
    overdue_at: datetime | None = None  # with ``overdue``: the moment a deadline before which has passed
    overdue: bool | None = None  # True: the next deadline is before ``overdue_at``; False: none is
    refused_writes: bool | None = None  # True: the EHR refused some writes; False: none
    keys: Sequence[str] = field(default_factory=tuple)
    limit: int = 5000
    offset: int = 0


class ReferralRows:
    def __init__(self, engine: Engine, sealer: Sealer, name_secret: bytes) -> None:
        self._engine = engine
        self._sealer = sealer
        self._name_secret = name_secret
        self._upsert_statement = _upsert_statement(engine)

    async def upsert(self, row: ReferralRow) -> bool:
        """Write ``row`` unless the table holds a newer version of it; whether it was written."""
        return await asyncio.to_thread(self._upsert, row)

    async def get(self, key: str) -> StoredRow | None:
        found = await self.find(RowQuery(open_only=False, keys=(key,), limit=1))
        return found[0] if found else None

    async def find(self, query: RowQuery) -> list[StoredRow]:
        return await asyncio.to_thread(self._find, query)

    async def caseloads(self) -> dict[str, int]:
        """Open referrals per staff id: every referral not ended whose team names them (in any role)."""
        return await asyncio.to_thread(self._caseloads)

    async def measure_facts(self, discharged_from: date, discharged_to: date) -> MeasureFactsRead:
        return await asyncio.to_thread(self._measure_facts, discharged_from, discharged_to)

    async def clear(self) -> None:
        """Empty the table (a rebuild starts from nothing)."""
        await asyncio.to_thread(self._clear)

    def _upsert(self, row: ReferralRow) -> bool:
        with self._engine.begin() as db:  # a row comes back only when written (rowcount is not portable here)
            return db.execute(self._upsert_statement, self._values(row)).first() is not None

    def _values(self, row: ReferralRow) -> dict[str, Any]:
        plain = row.model_dump(include=set(_PLAIN))
        person = row.person
        return {
            **plain,
            "received_at": _utc(row.received_at),
            "next_deadline": _utc(row.next_deadline) if row.next_deadline else None,
            "key": row.key,
            "version_at": _microseconds(row.version.at),
            "version_event": row.version.event,
            "measures": row.measures.model_dump(mode="json") if row.measures else None,
            "possible_duplicates": row.possible_duplicates,
            "person_sealed": self._sealer.seal(person.model_dump_json().encode(), bound_to=row.key),
            "name_keys": " ".join(name_search_keys([person.family or "", *person.given], self._name_secret)),
        }

    def _find(self, query: RowQuery) -> list[StoredRow]:
        statement = (
            select(referrals)
            .where(and_(True, *self._conditions(query)))
            .order_by(referrals.c.received_at.desc(), referrals.c.key)
            .limit(query.limit)
            .offset(query.offset)
        )
        with self._engine.connect() as db:
            return [self._stored(found) for found in db.execute(statement)]

    def _conditions(self, query: RowQuery) -> list[ColumnElement[bool]]:
        c = referrals.c
        conditions: list[ColumnElement[bool]] = []
        if query.open_only:
            conditions.append(c.ended.is_(False))
        if query.phases:
            conditions.append(c.phase.in_(query.phases))
        if query.keys:
            conditions.append(c.key.in_(query.keys))
        for column, value in ((c.track_id, query.track_id), (c.source_id, query.source_id), (c.at_risk, query.at_risk)):
            if value is not None:
                conditions.append(column == value)
        if query.key_contains:
            conditions.append(func.lower(c.key).contains(query.key_contains.lower(), autoescape=True))
        if query.name:
            conditions.append(self._name_matches(query.name))
        if query.text:
            key_matches = func.lower(c.key).contains(query.text.lower(), autoescape=True)
            conditions.append(or_(self._name_matches(query.text), key_matches))
        if query.overdue is not None:
            at = _utc(query.overdue_at or datetime.now(UTC))
            passed = c.next_deadline < at
            conditions.append(passed if query.overdue else or_(c.next_deadline.is_(None), c.next_deadline >= at))
        if query.refused_writes is not None:
            conditions.append(c.refused_writes > 0 if query.refused_writes else c.refused_writes == 0)
        return conditions

    def _name_matches(self, name: str) -> ColumnElement[bool]:
        words = name_search_keys([name], self._name_secret)
        return and_(True, *(referrals.c.name_keys.contains(word) for word in words)) if words else or_(False)

    def _stored(self, found: Row[Any]) -> StoredRow:
        values = found._mapping
        opened = self._sealer.open(values["person_sealed"], bound_to=values["key"])
        person = RowPerson.model_validate_json(opened) if opened is not None else RowPerson()
        row = ReferralRow(
            **{name: values[name] for name in _PLAIN},
            received_at=_utc(values["received_at"]),
            next_deadline=_utc(values["next_deadline"]) if values["next_deadline"] else None,
            key=values["key"],
            version=RowVersion(at=_from_microseconds(values["version_at"]), event=values["version_event"]),
            measures=MeasureFacts.model_validate(values["measures"]) if values["measures"] else None,
            possible_duplicates=values["possible_duplicates"] or [],
            person=person,
        )
        return StoredRow(row=row, readable=opened is not None)

    def _caseloads(self) -> dict[str, int]:
        c = referrals.c
        counts: Counter[str] = Counter()
        with self._engine.connect() as db:
            for (team,) in db.execute(select(c.team).where(c.ended.is_(False))):
                counts.update(set(team.values()))
        return dict(counts)

    def _measure_facts(self, discharged_from: date, discharged_to: date) -> MeasureFactsRead:
        c = referrals.c
        # The column as text, parsed once by pydantic's JSON parser (not json.loads, then validated again).
        # A row without facts (never accepted) holds JSON null: the column type writes None as 'null'.
        text = cast(c.measures, Text)
        statement = select(text).where(
            text.is_not(None), text != "null", c.hospital_discharge.between(discharged_from, discharged_to)
        )
        facts: list[MeasureFacts] = []
        unreadable = 0
        with self._engine.connect() as db:
            for (facts_json,) in db.execute(statement):
                try:
                    facts.append(MeasureFacts.model_validate_json(facts_json))
                except ValidationError:
                    unreadable += 1
        return MeasureFactsRead(facts=facts, unreadable=unreadable)

    def _clear(self) -> None:
        with self._engine.begin() as db:
            db.execute(delete(referrals))


def _utc(moment: datetime) -> datetime:
    """In UTC; a time without a zone is UTC already (SQLite gives times back without theirs)."""
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _microseconds(moment: datetime) -> int:
    return int(_utc(moment).timestamp() * 1_000_000)


def _from_microseconds(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


def _upsert_statement(engine: Engine) -> ReturningInsert[tuple[str]]:
    """Insert a row, or replace the stored one when the row is newer. Built once: building it for each row cost
    more of the worker's CPU than the write itself (bench/RESULTS.md, issue 18)."""
    insert = insert_into(engine, referrals)  # the values are the parameters it is executed with
    newer = tuple_(referrals.c.version_at, referrals.c.version_event) < tuple_(
        insert.excluded.version_at, insert.excluded.version_event
    )
    replaced = {column.name: insert.excluded[column.name] for column in referrals.columns if column.name != "key"}
    statement = insert.on_conflict_do_update(index_elements=[referrals.c.key], set_=replaced, where=newer)
    return statement.returning(referrals.c.key)
