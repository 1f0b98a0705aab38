"""Values as a person reads them in a terminal: times in the business time zone to the minute, money with
thousands separators, scores without float noise, and words or `-` instead of Python reprs. `--json` keeps the
raw values; only human output goes through here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from typing import Any

from pulsecheck.timeutil import local_minute

NOTHING = "-"


def when(value: datetime | str | None, tz: tzinfo) -> str:
    """A moment in the business time zone, to the minute (`2026-11-24 10:00`); `-` for none."""
    return local_minute(value, tz)


def day(value: date | datetime | str | None, tz: tzinfo | None = None) -> str:
    """A date (`2026-11-24`); a moment is first moved into `tz`; `-` for none."""
    if value is None or value == "":
        return NOTHING
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        if tz is not None and value.tzinfo is not None:
            value = value.astimezone(tz)
        return value.date().isoformat()
    return value.isoformat()


def money(value: float | int | None) -> str:
    """An amount with thousands separators and no `.0` (`240,000`; `1,234.50`); `-` for none."""
    if value is None:
        return NOTHING
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def score(value: float | int | None) -> str:
    """A score to at most two decimals without trailing zeros (`59.99`, `64.8`, `70`); `-` for none."""
    if value is None:
        return NOTHING
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def change(value: float | int | None) -> str:
    """A signed change (`-4.81`, `+2`); `-` for none."""
    if value is None:
        return NOTHING
    text = score(abs(value))
    return "0" if text == "0" else f"{'-' if value < 0 else '+'}{text}"


def word(value: Any) -> str:
    """Any value as words: `yes`/`no`, `-` for none, `a, b` for lists, `duplicate 1, stale 2` for mappings."""
    if value is None or value == "":
        return NOTHING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return score(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {word(item)}" for key, item in value.items()) or NOTHING
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(word(item) for item in value) or NOTHING
    return str(value)


def count(number: int, noun: str, plural: str | None = None) -> str:
    """`1 escalation`, `3 escalations`."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


REVIEW_KINDS = {"manual": "manual", "cadence": "cadence", "rule": "rule", "out_of_cycle": "rule"}


def review_kind(kind: str | None) -> str:
    """A review's kind as the issue tracker says it: manual, cadence or rule (rows stored before `rule` existed
    say out_of_cycle)."""
    return REVIEW_KINDS.get(kind or "", word(kind))
