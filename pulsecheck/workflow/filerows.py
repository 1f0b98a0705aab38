"""The records of a CSV or JSON import file, streamed: memory stays bounded by the longest record, never by the
file, and every way a file can be malformed is an InputError naming the file and the row or line.

CSV is read with `newline=""`, so a quoted field keeps its line breaks, and line by line (U+2028 and the like are
data, not line ends); JSON is a list of objects (or an object with one key holding that list), decoded one
object at a time.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from math import isfinite
from typing import Any, TextIO

from pulsecheck.errors import InputError

MAX_LINE = 1024 * 1024  # characters in one CSV line: a longer one is refused before it is held in memory
MAX_FIELD = 128 * 1024  # characters in one CSV field (the csv module's own default limit)
MAX_RECORD = 1024 * 1024  # characters of one JSON record
MAX_DIGITS = 30  # of a JSON integer: longer ones are refused before int() spends time on them
DELIMITERS = (",", ";", "\t", "|")
_READ = 64 * 1024


# One record: its row number (CSV: as a spreadsheet shows it, the header being row 1; JSON: 1, 2, ...), its values
# by column, and why it cannot be read (the values are then empty; reading goes on), or None. A plain tuple: one
# is made per row of files of millions.
Record = tuple[int, Any, str | None]  # values: a dict by column (or, see csv_records, a list of cells)


def csv_records(
    handle: TextIO,
    source: str,
    delimiter: str | None,
    required: tuple[str, ...],
    lists: bool = False,
    max_field: int = MAX_FIELD,
    max_line: int = MAX_LINE,
) -> Iterator[Record]:
    """The records of a CSV file after its header; a header lacking `required` columns is refused, naming the
    delimiter the file seems to use when it is not the one given. With `lists`, the values of a record are the
    list of its cells (absent ones None) rather than a dict, and the header's names come first, as row 0."""
    if delimiter is not None and len(delimiter) != 1:
        raise InputError(f"--delimiter {delimiter!r}: give one character, like ';' or '\\t'")
    csv.field_size_limit(max_field)
    lines = _lines(handle, source, max_line)
    first = next(lines, None)
    if first is None:
        return
    header = _header(first, source, delimiter or ",", required)
    if lists:
        yield (0, header, None)
    reader = csv.reader(lines, delimiter=delimiter or ",")
    width = len(header)
    number = 1
    try:
        for values in reader:
            number += 1
            if len(values) == width:
                yield (number, values if lists else dict(zip(header, values, strict=True)), None)
                continue
            if not values:
                continue  # a blank line
            if len(values) > width:
                hint = f" (quote values that contain {delimiter or ','!r})"
                yield (number, {}, f"{len(values)} values but the header has {width} columns{hint}")
                continue
            cells: list[str | None] = list(values)
            if len(cells) < width:
                cells += [None] * (width - len(cells))  # absent cells read as empty, as csv.DictReader does
            yield (number, cells if lists else dict(zip(header, cells, strict=True)), None)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise InputError(f"{source}: row {number + 1}: a field is longer than {max_field:,} characters") from None
        raise InputError(f"{source}: row {number + 1}: {exc}") from None


def _lines(handle: TextIO, source: str, max_line: int) -> Iterator[str]:
    """The lines of `handle` (line ends kept), each at most `max_line` characters."""
    number = 0
    while line := handle.readline(max_line + 1):
        number += 1
        if len(line) > max_line and not line.endswith(("\n", "\r")):
            raise InputError(f"{source}: line {number} is longer than {max_line:,} characters")
        yield line


def _header(line: str, source: str, delimiter: str, required: tuple[str, ...]) -> list[str]:
    """The column names of the header line; duplicates refused, a wrong delimiter named."""
    try:
        names = [name.strip() for name in next(csv.reader([line], delimiter=delimiter), [])]
    except csv.Error as exc:
        raise InputError(f"{source}: row 1 (header): {exc}") from None
    missing = [column for column in required if column not in names]
    if missing:
        for other in DELIMITERS:
            if other != delimiter and all(column in _split(line, other) for column in required):
                shown = "\\t" if other == "\t" else other
                raise InputError(f"{source}: delimiter looks like '{shown}' (use --delimiter '{shown}')")
        raise InputError(f"{source}: missing column(s): {', '.join(missing)}")
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise InputError(f"{source}: row 1 (header): column {name!r} appears twice")
        seen.add(name)
    return names


def _split(line: str, delimiter: str) -> list[str]:
    try:
        return [name.strip() for name in next(csv.reader([line], delimiter=delimiter), [])]
    except csv.Error:
        return []


class _NumberRefused(ValueError):
    """A JSON number that no column can hold: NaN, an infinity, or an integer of hundreds of digits."""


def _constant(text: str) -> Any:
    raise _NumberRefused(f"{text} is not a finite number")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _NumberRefused(f"an integer of {len(text.lstrip('-'))} digits is out of range")
    return int(text)


def _real(text: str) -> float:
    value = float(text)
    if not isfinite(value):
        raise _NumberRefused(f"{text[:40]} is not a finite number")
    return value


_DECODER = json.JSONDecoder(parse_constant=_constant, parse_int=_integer, parse_float=_real)
# Decodes what _DECODER refuses, only to find where a refused record ends so that reading can go on.
_SKIPPER = json.JSONDecoder(parse_constant=lambda _: None, parse_int=lambda _: 0, parse_float=lambda _: 0.0)
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "true or false", type(None): "null"}


class _JsonStream:
    """A window onto JSON text: values are decoded one at a time from a buffer refilled as needed."""

    def __init__(self, handle: TextIO, source: str, max_record: int = MAX_RECORD) -> None:
        self.handle, self.source, self.max_record = handle, source, max_record
        self.buffer, self.position, self.done, self.lines_before = "", 0, False, 0

    def fill(self, at_least: int = _READ) -> bool:
        """Read more text (at least `at_least` characters), dropping what was consumed; False at the end."""
        if self.done:
            return False
        self.lines_before += self.buffer.count("\n", 0, self.position)
        more = self.handle.read(max(at_least, _READ))
        self.buffer, self.position = self.buffer[self.position :] + more, 0
        self.done = not more
        return bool(more)

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end of the file)."""
        while True:
            while self.position < len(self.buffer) and self.buffer[self.position] in " \t\r\n":
                self.position += 1
            if self.position < len(self.buffer) or not self.fill():
                return self.buffer[self.position : self.position + 1]

    def expect(self, char: str, what: str) -> None:
        found = self.peek()
        if found != char:
            shown = repr(found) if found else "the end"
            raise InputError(f"{self.source}:{self.line()}: invalid JSON: expected {what}, found {shown}")
        self.position += 1

    def line(self, position: int | None = None) -> int:
        at = self.position if position is None else position
        return self.lines_before + self.buffer.count("\n", 0, at) + 1

    def value(self, where: str) -> tuple[Any, str | None]:
        """The next JSON value, or None and the reason it was refused (a NaN, a huge integer); `where` names it
        in errors (e.g. 'row 7')."""
        self.peek()
        refused = None
        while True:
            try:
                decoder = _SKIPPER if refused else _DECODER
                value, end = decoder.raw_decode(self.buffer, self.position)
            except json.JSONDecodeError as exc:
                pending = len(self.buffer) - self.position
                if pending > self.max_record:
                    raise InputError(f"{self.source}: {where} is longer than {self.max_record:,} characters") from None
                if self.fill(pending):  # perhaps only cut off by the end of the buffer: read more, try again
                    continue
                raise InputError(f"{self.source}:{self.line(exc.pos)}: invalid JSON: {exc.msg}") from None
            except _NumberRefused as exc:
                refused = str(exc)
                continue
            except RecursionError:
                raise InputError(f"{self.source}: {where}: nested too deeply") from None
            if end - self.position > self.max_record:
                raise InputError(f"{self.source}: {where} is longer than {self.max_record:,} characters")
            self.position = end
            return (None, refused) if refused else (value, None)


def json_records(handle: TextIO, source: str, max_record: int = MAX_RECORD) -> Iterator[Record]:
    """The objects of a JSON list (or of the one list an object holds under a single key), one at a time."""
    stream = _JsonStream(handle, source, max_record)
    wrapped = stream.peek() == "{"
    if wrapped:
        stream.position += 1
        if stream.peek() != '"':
            raise InputError(f"{source}: expected a JSON list of objects")
        stream.value("the key")
        stream.expect(":", "':'")
    if stream.peek() != "[":
        raise InputError(f"{source}: expected a JSON list of objects")
    stream.position += 1
    number = 0
    while stream.peek() != "]":
        if number:
            stream.expect(",", "',' or ']'")
        number += 1
        value, refused = stream.value(f"row {number}")
        if refused is None and not isinstance(value, dict):
            refused = f"expected an object, found {_JSON_TYPES.get(type(value), 'a number')}"
        yield (number, {}, refused) if refused else (number, value, None)
    stream.position += 1
    if wrapped and stream.peek() != "}":
        raise InputError(f"{source}:{stream.line()}: expected a JSON list of objects (or one key holding one)")
    if wrapped:
        stream.position += 1
    if stream.peek():
        raise InputError(f"{source}:{stream.line()}: invalid JSON: extra data after the list")
