"""Snapshot rows are written as text built by hand (for speed): that text must be what json.dumps writes, byte for
byte, whatever the numbers are, and read back as the same components and subscores."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from pulsecheck.scoring.compute import Component, ScoreResult
from pulsecheck.scoring.schema import parse_model
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, ScoreSnapshot, ScoringModelVersion
from pulsecheck.workflow.snapshot_rows import SnapshotWriter, number

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
MODEL = """\
version: "t"
groups:
  - {name: value, label: "Value"}
kpis:
  - {name: usage, group: value, weight: 69.5, scale: {min: 0, max: 100}}
  - {name: npv, group: value, weight: 30.5, formula: npv, scale: {min: 0, max: 1000}}
  - {name: logins, weight: 0}
buckets:
  - {name: low, below: 50, color: red}
  - {name: high, color: green}
discount_rate: 0.1
"""


@pytest.mark.parametrize("value", [0.1, 1 / 3, 1e16, 1e-7, -0.0, 5, 0, -12, None, math.nan, math.inf, -math.inf, True])
def test_a_number_is_written_as_json_dumps_writes_it(value: object) -> None:
    assert number(value) == json.dumps(value)


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.none())
def test_any_float_or_int_is_written_as_json_dumps_writes_it(value: float | int | None) -> None:
    assert number(value) == json.dumps(value)


def test_components_and_groups_are_the_text_json_dumps_writes_and_read_back(database: Database) -> None:
    check_written_and_read_back(database)


@pytest.mark.postgres
def test_the_same_on_postgresql(pg_database: Database) -> None:
    check_written_and_read_back(pg_database)  # psycopg passes the text; the server casts it to json


def check_written_and_read_back(database: Database) -> None:
    model = parse_model(MODEL, "m.yaml")
    observed = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
    components = [
        Component("usage", 55.5, 55.5, 69.5, 69.65, 38.66, observed, "stale", "neutral"),
        Component("npv", None, None, 30.5, 0.0, 0.0, None, "missing"),
        Component("logins", 12, None, 0, 0, 0.0, observed, "ok", "neutral"),
        Component("usage", math.nan, math.inf, 70, -math.inf, 1e300, observed, "ok", "concern"),
    ]
    groups = {"value": 55.5, "other": None}
    with database.transaction() as session:
        session.add(Account(external_id="ACME", name="Acme"))
        session.add(ScoringModelVersion(version="t", content=MODEL, sha256=model.digest(), status="approved",
                                        approved_by="olga", approved_at=NOW))  # fmt: skip
        session.flush()
        account = session.scalars(select(Account.id)).one()
        model_id = session.scalars(select(ScoringModelVersion.id)).one()
        writer = SnapshotWriter(session, model, model_id, NOW)
        expected = json.dumps(
            [
                {"kpi": c.kpi, "raw": c.raw, "normalized": c.normalized, "weight": c.weight,
                 "effective_weight": c.effective_weight, "contribution": c.contribution, "status": c.status,
                 "rating": c.rating, "observed_at": c.observed_at.isoformat() if c.observed_at else None}
                for c in components
            ]
        )  # fmt: skip
        assert writer.components(components) == expected
        assert writer.groups(groups) == json.dumps(groups)
        assert writer.groups({}) is None
        result = ScoreResult(61.5, "high", components[:3], [], True, "t", groups)
        writer.write([writer.row(account, result)])
    with database.transaction() as session:
        stored = session.scalars(select(ScoreSnapshot)).one()
        assert (stored.score, stored.bucket, stored.provisional, stored.as_of) == (61.5, "high", True, NOW)
        assert stored.groups == groups
        assert stored.components == json.loads(expected)[:3]
        assert stored.components[0]["observed_at"] == "2026-11-23T06:30:00+00:00"


NUMBERS = st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.none()


def test_any_components_and_subscores_are_the_text_json_dumps_writes(database: Database) -> None:
    """Floats are written inline (their repr), everything else through number(): nan, inf, -0.0, ints and None
    included, and equal times in two zones keep their own offsets."""
    model = parse_model(MODEL, "m.yaml")
    east = timezone(timedelta(hours=2))
    times = st.sampled_from([None, NOW, NOW.astimezone(east), datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC)])
    component = st.builds(
        Component, st.sampled_from(["usage", "npv", "logins", 'odd "name" é']), NUMBERS, NUMBERS, NUMBERS,
        NUMBERS, NUMBERS, times, st.sampled_from(["ok", "stale", "missing"]),
        st.sampled_from([None, "concern", "neutral", "strength"]),
    )  # fmt: skip
    with database.transaction() as session:
        writer = SnapshotWriter(session, model, 1, NOW)

        @given(st.lists(component, max_size=5), st.dictionaries(st.sampled_from(["value", "b", "ü"]), NUMBERS))
        def check(components: list[Component], groups: dict[str, float | int | None]) -> None:
            assert writer.components(components) == json.dumps(
                [
                    {"kpi": c.kpi, "raw": c.raw, "normalized": c.normalized, "weight": c.weight,
                     "effective_weight": c.effective_weight, "contribution": c.contribution, "status": c.status,
                     "rating": c.rating, "observed_at": c.observed_at.isoformat() if c.observed_at else None}
                    for c in components
                ]
            )  # fmt: skip
            assert writer.groups(groups) == (json.dumps(groups) if groups else None)

        check()


def test_equal_numbers_of_other_kinds_keep_their_own_text_after_one_was_remembered(database: Database) -> None:
    """The writer remembers floats' texts: 0.0 and -0.0, and 1.0, 1 and True, are equal keys but other JSON."""
    model = parse_model(MODEL, "m.yaml")
    with database.transaction() as session:
        writer = SnapshotWriter(session, model, 1, NOW)
        for values in ((1.0, 0.0, 2.5, 2.5, 0.1), (1, -0.0, 2.5, 5 / 2, 0.1), (True, 0.0, -2.5, 2.5, 1e-7)):
            component = Component("usage", *values, None, "ok", "neutral")
            assert writer.components([component, component]) == json.dumps(
                [{"kpi": "usage", "raw": values[0], "normalized": values[1], "weight": values[2],
                  "effective_weight": values[3], "contribution": values[4], "status": "ok", "rating": "neutral",
                  "observed_at": None}] * 2
            )  # fmt: skip


@pytest.mark.parametrize("position", range(5))
def test_a_component_equal_to_a_remembered_one_but_for_a_zero_sign_or_a_number_kind_keeps_its_own_text(
    database: Database, position: int
) -> None:
    """The writer remembers a whole component's text by its fields: a component whose fields equal a remembered
    one's (0.0 == -0.0, 2.0 == 2 == True... ) but are written otherwise, or whose time is the same instant in
    another zone, gets its own text."""
    model = parse_model(MODEL, "m.yaml")
    east = timezone(timedelta(hours=2))
    with database.transaction() as session:
        writer = SnapshotWriter(session, model, 1, NOW)
        for zero, one in ((0.0, 1.0), (-0.0, 1), (0.0, True), (-0.0, 1.0)):
            for when in (NOW, NOW.astimezone(east)):
                values: list[object] = [2.5, 50.0, 30.0, 30.0, 15.0]
                values[position] = zero
                for other in (list(values), [*values[:position], one, *values[position + 1 :]]):
                    component = Component("usage", *other, when, "ok", "neutral")  # type: ignore[arg-type]
                    assert writer.components([component]) == json.dumps(
                        [{"kpi": "usage", "raw": other[0], "normalized": other[1], "weight": other[2],
                          "effective_weight": other[3], "contribution": other[4], "status": "ok",
                          "rating": "neutral", "observed_at": when.isoformat()}]
                    )  # fmt: skip
