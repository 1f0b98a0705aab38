"""The one place for time: durations (`7d`), dates on the command line and in files, the end of a business day,
and ISO text for output."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from pulsecheck.errors import InputError

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d{1,12})\s*([smhdw])\s*$")
END_OF_DAY = time(23, 59, 59)
# The longest duration anything here means (a due date, a cooldown, a reading's max age): a bound that keeps
# `now + duration` far inside what datetime, SQLite and PostgreSQL hold.
MAX_DURATION = timedelta(days=36525)
# The epoch, aware and naive: timedelta arithmetic from them turns an instant into its UTC wall clock and back (or
# into seconds) exactly to the microsecond, at a tenth of the cost of `replace(tzinfo=...)` or `timegm`.
UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NAIVE_EPOCH = datetime(1970, 1, 1)


def parse_duration(text: str | int, where: str = "duration") -> timedelta:
    """Parse `7d`-style text (a bare integer means days) into a timedelta, or raise InputError."""
    if isinstance(text, bool):
        raise InputError(f"{where}: expected a duration like 7d, 12h or 2w, got {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise InputError(f"{where}: a duration cannot be negative, got {text!r}")
        return _bounded(text, "d", where, text)
    match = _PATTERN.match(str(text))
    if not match:
        raise InputError(f"{where}: expected a duration like 7d, 12h or 2w, got {str(text)[:40]!r}")
    return _bounded(int(match.group(1)), match.group(2), where, text)


def _bounded(amount: int, unit: str, where: str, text: str | int) -> timedelta:
    """`amount` of `unit` as a timedelta, refused beyond MAX_DURATION (before timedelta could overflow)."""
    if amount * _SECONDS[unit] > MAX_DURATION.total_seconds():
        raise InputError(f"{where}: {text!r} is longer than {MAX_DURATION.days}d (100 years)")
    return timedelta(**{_UNITS[unit]: amount})


def format_duration(delta: timedelta) -> str:
    """The shortest `Nd`/`Nh`/`Nm`/`Ns` spelling of a timedelta."""
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def end_of_day(day: date, tz: tzinfo) -> datetime:
    """The last second of `day` in the business time zone `tz` (aware): what a due date means."""
    return datetime.combine(day, END_OF_DAY, tzinfo=tz)


def start_of_day(day: date, tz: tzinfo) -> datetime:
    """Midnight at the start of `day` in the business time zone `tz` (aware)."""
    return datetime.combine(day, time.min, tzinfo=tz)


def parse_date(text: str) -> date:
    """An ISO date (YYYY-MM-DD), or ValueError saying what was expected."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def parse_datetime(text: str, tz: tzinfo = UTC) -> datetime:
    """An ISO date or date-time; naive values are taken in `tz`, the result is aware."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date or date-time (ISO 8601)") from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


def iso(value: date | datetime | None) -> str | None:
    """ISO text for JSON and exports; aware date-times in UTC, None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).isoformat()
    return value.isoformat()


def local_minute(value: datetime | str | None, tz: tzinfo) -> str:
    """A moment as a person reads it: in the business time zone `tz`, to the minute (`2026-11-24 10:00`); `-` for
    none. ISO text is accepted (what JSON shapes hold)."""
    if value is None or value == "":
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(tz)
    return moment.strftime("%Y-%m-%d %H:%M")
