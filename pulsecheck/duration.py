"""Durations written in files and options: `7d`, `12h`, `30m`, `2w`, `90s`."""

from __future__ import annotations

import re
from datetime import timedelta

from pulsecheck.errors import InputError

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str | int, where: str = "duration") -> timedelta:
    """Parse `7d`-style text (a bare integer means days) into a timedelta, or raise InputError."""
    if isinstance(text, bool):
        raise InputError(f"{where}: expected a duration like 7d, 12h or 2w, got {text!r}")
    if isinstance(text, int):
        return timedelta(days=text)
    match = _PATTERN.match(str(text))
    if not match:
        raise InputError(f"{where}: expected a duration like 7d, 12h or 2w, got {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def format_duration(delta: timedelta) -> str:
    """The shortest `Nd`/`Nh`/`Nm`/`Ns` spelling of a timedelta."""
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
