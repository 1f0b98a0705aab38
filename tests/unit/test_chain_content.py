"""The audit chain's fast content text is the canonical JSON text, byte for byte (stored entries must verify)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulsecheck.jsontext import canonical_json
from pulsecheck.storage.chain import model_of, spec_of
from pulsecheck.storage.entries import AUDITED, content_of

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2999, 12, 31)),
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2999, 12, 30)).map(
        lambda d: d.replace(tzinfo=timezone(timedelta(hours=2)))
    ),
    st.lists(st.one_of(st.text(), st.integers(-1000, 1000)), max_size=4),
)


@given(st.sampled_from(AUDITED), st.data())
def test_content_is_the_canonical_json_of_the_recorded_fields(spec, data) -> None:  # type: ignore[no-untyped-def]
    values = {"id": data.draw(st.integers(1, 10**9))} | {name: data.draw(scalars) for name in spec.fields}
    expected = canonical_json({"id": values["id"], **{name: values[name] for name in spec.fields}})
    assert content_of(spec, values) == expected


def test_an_aware_time_is_written_in_utc() -> None:
    spec = next(s for s in AUDITED if s.kind == "review_event")
    at = datetime(2026, 11, 24, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    values = {"id": 1, **dict.fromkeys(spec.fields), "at": at}
    assert '"at":"2026-11-24T09:00:00+00:00"' in content_of(spec, values)
    assert at.astimezone(UTC).isoformat() == "2026-11-24T09:00:00+00:00"


# How SQLite hands a UTCDateTime back raw: what `audit verify` reads through the DB-API.
stored_times = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2999, 12, 30)).map(
    lambda d: d.strftime("%Y-%m-%d %H:%M:%S.%f")
)


@given(stored_times, st.one_of(st.none(), st.text()), st.integers(1, 10**9))
def test_verify_rebuilds_a_raw_row_into_the_content_the_chain_stored(at, comment, ident) -> None:  # type: ignore[no-untyped-def]
    """The fast raw-row path of `audit verify` and the ORM path agree on every stored time, byte for byte."""
    from sqlalchemy import create_engine

    from pulsecheck.storage.chainscan import RowContent

    spec = next(s for s in AUDITED if s.kind == "review_event")
    reader = RowContent.of(spec, create_engine("sqlite://").dialect)
    raw = {"id": ident, **dict.fromkeys(spec.fields, "x"), "review_id": 7, "comment": comment, "at": at}
    row = (*(raw[name] for name in reader.names), None, ident)
    moment = datetime.fromisoformat(at).replace(tzinfo=UTC)
    assert reader.content(row) == reader.exact_content(row) == content_of(spec, raw | {"at": moment})


def test_a_stored_time_in_another_spelling_is_compared_the_exact_way() -> None:
    """A time written by hand without microseconds reads as the same moment, as the ORM reads it."""
    from sqlalchemy import create_engine

    from pulsecheck.storage.chainscan import RowContent

    spec = next(s for s in AUDITED if s.kind == "review_event")
    reader = RowContent.of(spec, create_engine("sqlite://").dialect)
    raw = {"id": 1, **dict.fromkeys(spec.fields), "at": "2026-11-25 10:00:00"}
    row = (*(raw[name] for name in reader.names), None, 1)
    assert '"at":"2026-11-25T10:00:00+00:00"' in reader.exact_content(row)
    assert reader.content(row) == reader.exact_content(row)


def test_every_audited_model_name_is_a_mapped_class_with_its_fields_and_its_table() -> None:
    # Specs name their class (most are declared on first use) and their table (what a check on Core reads): a
    # misspelt name or field would fail only at a commit, or a wrong table at a check.
    for spec in AUDITED:
        model = model_of(spec)
        assert model.__name__ == spec.model_name and spec_of(model) is spec
        assert set(spec.fields) <= set(model.__table__.columns.keys())
        assert spec.table is model.__table__


def test_a_class_the_chain_does_not_audit_has_no_spec() -> None:
    from pulsecheck.storage.models import Notification, Risk

    for model in (Risk, Notification, type("Review", (), {})):  # the last: a class that only shares a name
        with pytest.raises(KeyError):
            spec_of(model)
