"""Reading CSV/JSON import files into rows, with errors naming file, row and column."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pulsecheck.errors import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    """One record of an import file; `get` converts a column and names file/row/column on error."""

    source: str
    number: int
    values: dict[str, Any]

    def where(self, column: str) -> str:
        return f"{self.source}: row {self.number}, column {column!r}"

    def text(self, column: str, required: bool = False) -> str | None:
        value = self.values.get(column)
        if value is None or str(value).strip() == "":
            if required:
                raise InputError(f"{self.where(column)}: value is required")
            return None
        return str(value).strip()

    def get(self, column: str, convert: Callable[[str], T], required: bool = False) -> T | None:
        raw = self.text(column, required)
        if raw is None:
            return None
        try:
            return convert(raw)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{self.where(column)}: {exc}") from None

    def choice(self, column: str, choices: tuple[str, ...], required: bool = False) -> str | None:
        value = self.text(column, required)
        if value is not None and value not in choices:
            raise InputError(f"{self.where(column)}: {value!r} is not one of {', '.join(choices)}")
        return value


def parse_number(text: str) -> float:
    """A finite decimal number."""
    try:
        value = float(text.replace(",", "").strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def read_rows(path: str | Path, required_columns: tuple[str, ...]) -> list[Row]:
    """Rows of a CSV file (header line) or a JSON file (a list of objects)."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{source}: cannot read: {exc.strerror}") from None
    if path.suffix.lower() == ".json":
        rows = _json_rows(text, source)
    else:
        rows = _csv_rows(text, source)
    columns = set().union(*(row.values.keys() for row in rows)) if rows else set()
    missing = [c for c in required_columns if c not in columns]
    if rows and missing:
        raise InputError(f"{source}: missing column(s): {', '.join(missing)}")
    return rows


def _json_rows(text: str, source: str) -> list[Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())), list):
        data = next(iter(data.values()))
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise InputError(f"{source}: expected a JSON list of objects")
    return [Row(source, number, item) for number, item in enumerate(data, start=1)]


def _csv_rows(text: str, source: str) -> list[Row]:
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None:
        return []
    rows = []
    for number, record in enumerate(reader, start=2):  # row numbers as a spreadsheet shows them
        if None in record:
            raise InputError(f"{source}: row {number}: more values than header columns")
        rows.append(Row(source, number, {k.strip(): v for k, v in record.items() if k}))
    return rows
