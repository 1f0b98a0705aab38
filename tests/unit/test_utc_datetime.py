"""The timestamps SQLite stores: UTCDateTime writes the text SQLite's own DATETIME type writes for the same
instant in UTC (what the rows already stored hold, and what SQL compares and orders), and reads back the instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select
from sqlalchemy.dialects import sqlite

from pulsecheck.storage.types import UTCDateTime

DIALECT = sqlite.dialect()
OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
INSTANTS = st.datetimes(
    min_value=datetime(1900, 1, 2), max_value=datetime(9999, 12, 30), timezones=OFFSETS
)  # aware, any offset, microseconds included


@given(INSTANTS)
def test_a_timestamp_is_stored_as_sqlites_datetime_stores_the_same_instant_in_utc(value: datetime) -> None:
    ours = UTCDateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
    theirs = sqlite.DATETIME().bind_processor(DIALECT)
    assert ours is not None and theirs is not None
    assert ours(value) == theirs(value.astimezone(UTC).replace(tzinfo=None))


def test_timestamps_read_back_as_the_instants_written_and_order_as_time_does(tmp_path: object) -> None:
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime()))
    engine = create_engine(f"sqlite:///{tmp_path}/t.db")
    table.create(engine)
    base = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    written = [base.astimezone(timezone(timedelta(hours=h))) + timedelta(microseconds=m) for h, m in
               [(5, 0), (-8, 1), (0, 999_999), (13, 30)]]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": k, "at": at} for k, at in enumerate(written)])
        read = connection.execute(select(table.c.id, table.c.at).order_by(table.c.at)).all()
    engine.dispose()
    assert [at for _, at in read] == sorted(written)
    assert all(at.tzinfo is UTC for _, at in read)
    assert [id_ for id_, _ in read] == sorted(range(len(written)), key=lambda k: written[k])


def test_a_naive_timestamp_is_refused() -> None:
    process = UTCDateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
    assert process is not None
    with pytest.raises(ValueError, match="naive datetime"):
        process(datetime(2026, 11, 30, 9, 0))
    assert process(None) is None


ZONES = st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]).map(
    ZoneInfo
)


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=OFFSETS | ZONES))
def test_any_aware_instant_binds_as_its_utc_wall_clock(value: datetime) -> None:
    """What every database is given (PostgreSQL's value, SQLite's before its text): the instant in UTC, naive,
    whatever the zone (DST folds and gaps included), as `astimezone(UTC)` would say it."""
    assert UTCDateTime().process_bind_param(value, DIALECT) == value.astimezone(UTC).replace(tzinfo=None)


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_any_stored_wall_clock_reads_back_as_that_instant_in_utc(stored: datetime) -> None:
    read = UTCDateTime().process_result_value(stored, DIALECT)
    assert read == stored.replace(tzinfo=UTC) and read is not None and read.tzinfo is UTC
    assert read.replace(tzinfo=None) == stored  # the wall clock itself, to the microsecond
