"""Jinja2 filters: dates, times and money in the business time zone, in human form."""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Any


def when(value: datetime | date | str | None, tz: tzinfo) -> str:
    """`29 Nov 2026 14:05` in the business time zone; a date as `29 Nov 2026`; None as a dash."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        local = value.astimezone(tz)
        return f"{local.day} {local:%b %Y %H:%M}"
    return f"{value.day} {value:%b %Y}"


def money(value: Any) -> str:
    """`$120,000` (whole units, thousands separated); None as a dash."""
    if value is None:
        return "—"
    try:
        return f"${float(value):,.0f}"
    except (TypeError, ValueError):
        return str(value)


def score(value: Any) -> str:
    """A score with one decimal, or a dash."""
    if value is None:
        return "—"
    return f"{float(value):.1f}"


def number(value: Any) -> str:
    """A measured value as people write it: at most two decimals, no trailing zeros; a dash for None."""
    if value is None:
        return "—"
    try:
        return f"{float(value):,.2f}".rstrip("0").rstrip(".")
    except (TypeError, ValueError):
        return str(value)
