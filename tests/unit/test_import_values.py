"""Values of import files: numbers strictly (a decimal point, or a comma when declared; never thousands
separators), dates and times within the years an import may hold, text as given; the fast paths that millions
of rows take agree with the general ones that explain a refusal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulsecheck.errors import InputError
from pulsecheck.workflow.imports import Row, parse_day, parse_moment, parse_number


@pytest.mark.parametrize(
    "text, number",
    [
        ("15", 15.0),
        ("1.5", 1.5),
        (" -0.25 ", -0.25),
        ("+3", 3.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("2.5E-2", 0.025),
    ],
)
def test_plain_numbers_are_read(text: str, number: float) -> None:
    assert parse_number(text) == number


@pytest.mark.parametrize(
    "text, why",
    [
        ("1,5", "'1,5' is not a number (use a decimal point, or --decimal-comma)"),
        ("1,000", "'1,000' is not a number (use a decimal point, or --decimal-comma)"),
        ("1 000", "'1 000' is not a number"),
        ("1_000", "'1_000' is not a number"),
        ("nan", "'nan' is not a number"),
        ("Infinity", "'Infinity' is not a number"),
        ("1e999", "'1e999' is not a finite number"),
        ("٣", "'٣' is not a number"),
        ("0x10", "'0x10' is not a number"),
        ("", "'' is not a number"),
    ],
)
def test_anything_else_is_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_number(text)
    assert str(caught.value) == why


def test_a_declared_decimal_comma_reads_commas_and_refuses_points() -> None:
    assert parse_number("1,5", decimal_comma=True) == 1.5
    assert parse_number("-12", decimal_comma=True) == -12.0
    with pytest.raises(ValueError, match=r"'1\.5' is not a number \(decimal comma expected\)"):
        parse_number("1.5", decimal_comma=True)
    with pytest.raises(ValueError):
        parse_number("1.000,5", decimal_comma=True)  # no thousands separators, either way


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_written_by_python_reads_back_exactly(value: float) -> None:
    assert parse_number(repr(value)) == value


@given(st.one_of(st.text(max_size=12), st.from_regex(r"\A[+-]?[0-9.,eE_ ]{0,8}\Z"), st.floats().map(repr)))
def test_the_fast_path_for_numbers_agrees_with_the_general_one(text: str) -> None:
    for comma in (False, True):
        row = Row("f.csv", 2, {"v": text}, decimal_comma=comma)
        try:
            expected: Any = parse_number(text, comma) if text.strip() else None
        except ValueError:
            expected = InputError
        try:
            got: Any = row.decimal("v")
        except InputError:
            got = InputError
        assert got == expected


@given(st.text(max_size=30) | st.datetimes().map(str) | st.dates().map(str))
def test_the_fast_path_for_times_agrees_with_the_general_one(text: str) -> None:
    row = Row("f.csv", 2, {"t": text, "padded": f" {text} "})
    try:
        expected: Any = parse_moment(text, UTC) if text.strip() else None
    except ValueError:
        expected = InputError
    for column in ("t", "padded"):
        try:
            got: Any = row.moment(column, UTC)
        except InputError:
            got = InputError
        assert got == expected


@pytest.mark.parametrize(
    "text",
    ["1899-12-31", "3000-01-01", "9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00", "1900-01-01T00:30:00+01:00"],
)
def test_times_outside_1900_to_2999_are_refused_before_the_database_sees_them(text: str) -> None:
    with pytest.raises(ValueError, match="outside the years 1900..2999"):
        parse_moment(text, UTC)


def test_naive_times_are_taken_in_the_business_time_zone() -> None:
    cet = timezone(timedelta(hours=1))
    assert parse_moment("2026-11-20T06:00:00", cet) == datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
    assert parse_moment("2026-11-20T06:00:00Z", cet) == datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    assert parse_day("2999-12-31") == date(2999, 12, 31)


@pytest.mark.parametrize(
    "value, why",
    [
        ({"first": "Ann"}, "expected a single value, found an object"),
        (["Ann"], "expected a single value, found a list"),
        (True, "expected a single value, found true or false"),
        ("   ", "value is required"),
        (None, "value is required"),
    ],
)
def test_text_is_a_single_value_never_a_python_spelling(value: Any, why: str) -> None:
    with pytest.raises(InputError) as caught:
        Row("f.json", 4, {"name": value}).text("name", required=True)
    assert str(caught.value) == f"f.json: row 4, column 'name': {why}"


def test_text_keeps_inner_line_breaks_and_separators() -> None:
    row = Row("f.csv", 2, {"name": " Line1\r\nLine2\u2028x ", "id": 1042})
    assert row.text("name") == "Line1\r\nLine2\u2028x"
    assert row.text("id") == "1042"  # a JSON number where an id belongs
