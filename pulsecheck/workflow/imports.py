"""Reading CSV/JSON import files row by row in bounded memory, converting values strictly (numbers, dates and
times as given or refused), and collecting every bad row (up to MAX_PROBLEMS) so one run reports them all."""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache
from itertools import islice
from math import isfinite
from pathlib import Path
from typing import Any, TypeVar

from pulsecheck.errors import InputError, ValidationFailed
from pulsecheck.textfile import open_text, undecodable
from pulsecheck.timeutil import parse_date, parse_datetime
from pulsecheck.workflow.filerows import MAX_FIELD, MAX_LINE, MAX_RECORD, csv_records, json_records

T = TypeVar("T")

MAX_PROBLEMS = 50  # bad rows reported by one run; reading stops there
CHUNK = 5000  # rows checked and written together: memory is bounded by this, not by the file
MAX_LISTED_ROWS = 100_000  # read_rows (a whole file in memory, for small files such as a team's users)
EARLIEST, LATEST = 1900, 2999  # years a date or time in an import may have: beyond them is a typo, or an overflow

NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_COMMA_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:,[0-9]*)?|,[0-9]+)(?:[eE][+-]?[0-9]+)?")
_JSON_KINDS = {dict: "an object", list: "a list", bool: "true or false"}


@dataclass(frozen=True)
class InputImport:
    """What an import of inputs did: rows created, updated, and skipped as already stored."""

    created: int
    updated: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class InputLimits:
    """The bounds of one import (`[limits]`): bad rows reported before reading stops, and the longest CSV field,
    CSV line and JSON record read."""

    max_problems: int = MAX_PROBLEMS
    max_field: int = MAX_FIELD
    max_line: int = MAX_LINE
    max_record: int = MAX_RECORD


@dataclass(frozen=True)
class FileFormat:
    """How an import file writes its values (the CSV delimiter, default ',', and the decimal mark), and the
    bounds it is read within."""

    delimiter: str | None = None
    decimal_comma: bool = False
    limits: InputLimits = InputLimits()


@dataclass(slots=True)
class Row:
    """One record of an import file; its methods convert a column and name file/row/column on error.

    They run once per value of files of millions of rows, so plain text takes the shortest path."""

    source: str
    number: int
    values: dict[str, Any]
    decimal_comma: bool = False

    def where(self, column: str) -> str:
        """`file: row N, column 'x'`, the start of every message about a value."""
        return f"{self.source}: row {self.number}, column {column!r}"

    def text(self, column: str, required: bool = False) -> str | None:
        """The value as text (surrounding spaces dropped), None when empty; an object, a list or a boolean
        where text belongs is refused rather than stored as its Python spelling."""
        value = self.values.get(column)
        if value.__class__ is str:
            value = value.strip()
            if value:
                return value
        elif isinstance(value, dict | list | bool):
            raise InputError(f"{self.where(column)}: expected a single value, found {_JSON_KINDS[type(value)]}")
        elif value is not None:  # a JSON number where text belongs: an id such as 1042
            return str(value)
        if required:
            raise InputError(f"{self.where(column)}: value is required")
        return None

    def get(self, column: str, convert: Callable[[str], T], required: bool = False) -> T | None:
        """The value converted by `convert` (a ValueError becomes an InputError naming the place)."""
        raw = self.text(column, required)
        if raw is None:
            return None
        try:
            return convert(raw)
        except (ValueError, TypeError, OverflowError) as exc:
            raise InputError(f"{self.where(column)}: {exc}") from None

    def decimal(self, column: str, required: bool = False) -> float | None:
        """A finite number: a JSON number as it is, text strictly (see parse_number)."""
        value = self.values.get(column)
        if value.__class__ is str and not self.decimal_comma and NUMBER.fullmatch(value):
            number = float(value)
            if number - number == 0:  # finite: inf - inf is nan
                return number
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return self.get(column, lambda text: parse_number(text, self.decimal_comma), required)

    def moment(self, column: str, tz: tzinfo, required: bool = False) -> datetime | None:
        """An ISO date or date-time (naive ones in `tz`) within the years EARLIEST..LATEST."""
        value = self.values.get(column)
        if value.__class__ is str:
            try:
                return cached_moment(value, tz)
            except ValueError:
                pass  # the general path below says why, naming the place
        return self.get(column, lambda text: cached_moment(text, tz), required)

    def day(self, column: str, required: bool = False) -> date | None:
        """An ISO date within the years EARLIEST..LATEST."""
        return self.get(column, parse_day, required)

    def choice(self, column: str, choices: tuple[str, ...], required: bool = False) -> str | None:
        """The value if it is one of `choices`."""
        value = self.text(column, required)
        if value is not None and value not in choices:
            raise InputError(f"{self.where(column)}: {value!r} is not one of {', '.join(choices)}")
        return value


def parse_number(text: str, decimal_comma: bool = False) -> float:
    """A finite decimal number written plainly: digits, one decimal point (a comma with `decimal_comma`), an
    optional exponent; no thousands separators, so `1,5` is never read as 15."""
    text = text.strip()
    pattern, other = (_COMMA_NUMBER, ".") if decimal_comma else (NUMBER, ",")
    if not pattern.fullmatch(text):
        hint = ""
        if other in text:
            hint = " (decimal comma expected)" if decimal_comma else " (use a decimal point, or --decimal-comma)"
        raise ValueError(f"{text[:40]!r} is not a number{hint}")
    value = float(text.replace(",", ".") if decimal_comma else text)
    if not isfinite(value):
        raise ValueError(f"{text[:40]!r} is not a finite number")
    return value


def parse_moment(text: str, tz: tzinfo) -> datetime:
    """An ISO date or date-time (naive ones taken in `tz`) that exists in UTC within the years EARLIEST..LATEST."""
    value = parse_datetime(text, tz)
    try:
        year = value.astimezone(UTC).year
    except OverflowError:  # 9999-12-31T23:00-05:00 is past what datetime holds
        year = 0
    if not EARLIEST <= year <= LATEST:
        raise ValueError(f"{text[:40]!r} is outside the years {EARLIEST}..{LATEST}")
    return value


cached_moment = lru_cache(maxsize=4096)(parse_moment)  # the timestamps of an export repeat across its accounts


def parse_day(text: str) -> date:
    """An ISO date within the years EARLIEST..LATEST."""
    value = parse_date(text)
    if not EARLIEST <= value.year <= LATEST:
        raise ValueError(f"{text[:40]!r} is outside the years {EARLIEST}..{LATEST}")
    return value


class Problems:
    """The problems of one import: bad rows (up to MAX_PROBLEMS) and at most one about the file itself; they
    are reported in row order."""

    def __init__(self, source: str, limit: int = MAX_PROBLEMS) -> None:
        self.source, self.limit = source, limit
        self.found: list[tuple[int, str]] = []

    def __bool__(self) -> bool:
        return bool(self.found)

    @property
    def full(self) -> bool:
        """Whether reading should stop: `limit` problems found."""
        return len(self.found) >= self.limit

    def add(self, message: str, row: int = 0) -> None:
        """Record one problem of `row` (0: of the file); the message names file, row and column."""
        if not self.full:
            self.found.append((row, message))

    def check(self, row: Row, parse: Callable[[Row], T]) -> T | None:
        """`parse(row)`, or None with its InputError recorded."""
        try:
            return parse(row)
        except InputError as exc:
            self.add(str(exc), row.number)
            return None

    def raise_if_any(self) -> None:
        """Nothing when no problem was found; one problem is an InputError, several a ValidationFailed."""
        messages = [message for _, message in sorted(self.found, key=lambda found: found[0] or float("inf"))]
        if len(messages) == 1:
            raise InputError(messages[0])
        if messages:
            last = messages[-1] + (f" (stopped after {self.limit} problems)" if self.full else "")
            raise ValidationFailed([*messages[:-1], last])


def iter_rows(path: str | Path, required: tuple[str, ...], fmt: FileFormat, problems: Problems) -> Iterator[Row]:
    """The rows of a CSV file (header line) or a JSON file (a list of objects), streamed. A row that cannot be
    read, or the file's own fault (encoding, syntax, missing columns), goes to `problems`; reading stops at the
    latter, or when `problems` is full."""
    source, comma = str(path), fmt.decimal_comma
    for number, values in iter_values(path, required, fmt, problems):
        yield Row(source, number, values, comma)


def iter_values(
    path: str | Path, required: tuple[str, ...], fmt: FileFormat, problems: Problems, lists: bool = False
) -> Iterator[tuple[int, Any]]:
    """(row number, values) of each readable record, as `iter_rows` reads them; values are a dict by column, or
    with `lists` a CSV record's list of cells after the header's names as row 0 (JSON records stay dicts)."""
    source = str(path)
    try:
        with open_text(path) as handle:
            limits = fmt.limits
            if Path(path).suffix.lower() == ".json":
                records = json_records(handle, source, limits.max_record)
            else:
                records = csv_records(handle, source, fmt.delimiter, required, lists, limits.max_field, limits.max_line)
            for number, values, problem in records:
                if problem is None:
                    yield number, values
                    continue
                problems.add(f"{source}: row {number}: {problem}", number)
                if problems.full:
                    return
    except UnicodeDecodeError:
        problems.add(str(undecodable(path)))
    except InputError as exc:
        problems.add(str(exc))


def chunks(rows: Iterator[T], size: int | None = None) -> Iterator[list[T]]:
    """`rows` in lists of at most `size` (default CHUNK).

    The cyclic garbage collector runs between chunks, over the young generations only: left to itself it runs
    every few hundred rows and, now and then, over every object of the process (15% of an import's time); the
    cycles one chunk's database work leaves are young, and collected before the next chunk."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        while chunk := list(islice(rows, size or CHUNK)):
            yield chunk
            gc.collect(1)
    finally:
        if collecting:
            gc.enable()


def read_rows(path: str | Path, required_columns: tuple[str, ...], fmt: FileFormat = FileFormat()) -> list[Row]:
    """Every row of a small import file (at most MAX_LISTED_ROWS), for imports that need them all at once; the
    first problem is an InputError."""
    problems = Problems(str(path), fmt.limits.max_problems)
    rows: list[Row] = []
    for row in iter_rows(path, required_columns, fmt, problems):
        if len(rows) == MAX_LISTED_ROWS:
            raise InputError(f"{path}: over {MAX_LISTED_ROWS:,} rows")
        rows.append(row)
    problems.raise_if_any()
    return rows
