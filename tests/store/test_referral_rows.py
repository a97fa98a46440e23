"""The read model's table on SQLite and PostgreSQL: the newest version of a row wins whatever order writes
arrive in, patient details are sealed (found by a keyed hash of a name's words, never stored as text), and a
row sealed under a key the ring no longer holds reads as unreadable instead of failing the list."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, select

from referral_service.codec import KeyRing
from referral_service.domain.measures import MeasureFacts
from referral_service.domain.patient_match import name_search_secret
from referral_service.domain.referral_row import ReferralRow, RowPerson, RowVersion
from referral_service.store.referrals import ReferralRows, RowQuery
from referral_service.store.sealing import Sealer
from referral_service.store.tables import referrals

RING = KeyRing.from_base64({"k1": KeyRing.new_key()}, "k1")
AT = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)
PERSON = RowPerson(
    family="Testpatient", given=["Ada", "María"], birth_date=date(1984, 2, 29), gender="female", mrn="MRN-77"
)


def rows_on(engine: Engine, ring: KeyRing = RING) -> ReferralRows:
    return ReferralRows(engine, Sealer(ring), name_search_secret(ring.active_key))


def row(key: str = "hapi.SR-1.abc", *, event: int = 10, at: datetime = AT, **changes) -> ReferralRow:
    values = {
        "key": key,
        "version": RowVersion(at=at, event=event),
        "source_id": "hapi",
        "phase": "screening",
        "ended": False,
        "received_at": AT - timedelta(days=1),
        "hospital_discharge": date(2026, 11, 1),
        "team": {"case_manager": "cm-ortiz"},
        "person": PERSON,
        **changes,
    }
    return ReferralRow(**values)


async def test_a_row_reads_back_as_written(engine: Engine):
    rows = rows_on(engine)
    written = row(
        phase="in_treatment",
        from_setting="php",
        possible_duplicates=["hapi.SR-0.def"],
        sessions_attended=3,
        hours_attended=9.5,
        next_deadline=AT + timedelta(days=2),
        measures=MeasureFacts(track_id="adult-mh", source_id="hapi", hospital_discharge=date(2026, 11, 1)),
    )
    assert await rows.upsert(written)
    stored = await rows.get(written.key)
    assert stored is not None
    assert stored.readable
    assert stored.row == written


async def test_a_row_written_before_the_screening_details_reads_as_having_none(engine: Engine):
    """Rows from before migration 0004 hold NULL duplicates: the inbox lists them with no flag, not an error."""
    rows = rows_on(engine)
    assert await rows.upsert(row())
    with engine.begin() as db:
        db.execute(referrals.update().values(possible_duplicates=None))
    stored = await rows.get(row().key)
    assert stored is not None
    assert stored.row.possible_duplicates == []
    assert stored.row.from_setting is None


async def test_an_older_or_repeated_version_never_overwrites_a_newer_one(engine: Engine):
    rows = rows_on(engine)
    newest = row(event=20, phase="in_treatment")
    assert await rows.upsert(newest)
    assert not await rows.upsert(row(event=12, phase="screening"))  # a retried write arriving late
    assert not await rows.upsert(newest)  # the same version again
    later_run = row(event=3, at=AT + timedelta(days=30), phase="in_treatment", sessions_attended=12)
    assert await rows.upsert(later_run)  # after continue-as-new: history restarts, the time has moved on
    stored = await rows.get(newest.key)
    assert stored is not None
    assert stored.row.sessions_attended == 12


async def test_concurrent_writes_of_one_row_leave_the_newest(engine: Engine):
    rows = rows_on(engine)
    versions = [row(event=event, sessions_attended=event) for event in range(1, 41)]
    await asyncio.gather(*(rows.upsert(v) for v in reversed(versions)))
    stored = await rows.get(versions[0].key)
    assert stored is not None
    assert stored.row.sessions_attended == 40


async def test_patients_are_found_by_any_word_of_their_name_and_stored_only_sealed(engine: Engine):
    rows = rows_on(engine)
    await rows.upsert(row("hapi.SR-1.abc"))
    await rows.upsert(row("hapi.SR-2.def", person=RowPerson(family="Otherperson", given=["Ben"])))

    for query in ("ada", "  TESTPATIENT ", "maria", "Ada Testpatient"):
        found = await rows.find(RowQuery(name=query))
        assert [f.row.key for f in found] == ["hapi.SR-1.abc"], query
    assert await rows.find(RowQuery(name="Ada Otherperson")) == []  # every word must match
    assert [f.row.key for f in await rows.find(RowQuery(key_contains="sr-2"))] == ["hapi.SR-2.def"]

    with engine.connect() as db:
        stored = " ".join(str(value) for found in db.execute(select(referrals)) for value in found)
    for plain in ("Testpatient", "Ada", "María", "1984-02-29", "MRN-77"):
        assert plain not in stored


async def test_a_row_sealed_under_a_retired_key_reads_as_unreadable(engine: Engine):
    retired = KeyRing.from_base64({"old": KeyRing.new_key()}, "old")
    await rows_on(engine, retired).upsert(row("hapi.SR-1.abc", phase="in_treatment"))
    await rows_on(engine).upsert(row("hapi.SR-2.def"))

    found = {f.row.key: f for f in await rows_on(engine).find(RowQuery())}

    assert found["hapi.SR-2.def"].readable
    assert found["hapi.SR-2.def"].row.person == PERSON
    assert not found["hapi.SR-1.abc"].readable
    assert found["hapi.SR-1.abc"].row.person == RowPerson()
    assert found["hapi.SR-1.abc"].row.phase == "in_treatment"  # the rest of the row is still there


async def test_measure_facts_are_the_accepted_rows_discharged_in_the_period(engine: Engine):
    rows = rows_on(engine)

    def facts(discharged: date) -> MeasureFacts:
        return MeasureFacts(track_id="adult-mh", source_id="hapi", hospital_discharge=discharged, weeks_met=2)

    inside = facts(date(2026, 11, 1))
    await rows.upsert(row("hapi.SR-in.a", measures=inside))
    await rows.upsert(row("hapi.SR-edge.a", hospital_discharge=date(2026, 11, 30), measures=facts(date(2026, 11, 30))))
    await rows.upsert(row("hapi.SR-out.a", hospital_discharge=date(2026, 12, 1), measures=facts(date(2026, 12, 1))))
    await rows.upsert(row("hapi.SR-screening.a"))  # never accepted: no facts
    await rows.upsert(row("hapi.SR-future.a", measures=inside))
    with engine.begin() as db:  # facts another version of the service wrote, in a shape this one cannot read
        db.execute(referrals.update().where(referrals.c.key == "hapi.SR-future.a").values(measures={"shape": 2}))

    read = await rows.measure_facts(date(2026, 11, 1), date(2026, 11, 30))

    assert sorted(f.hospital_discharge for f in read.facts) == [date(2026, 11, 1), date(2026, 11, 30)]
    assert read.facts[0].weeks_met == 2
    assert read.unreadable == 1
