"""Trends over an account's score history: changes, drops, streaks, sudden moves, direction, sparklines.

A history is a list of `(when, score)` points sorted ascending by `when`, where `when` is a date or a
datetime (a date counts as midnight, in the time zone of the other points if they have one). Points whose
score is None (snapshots that could not be scored) are skipped everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import NamedTuple

Point = tuple[date | datetime, float | None]
BARS = "▁▂▃▄▅▆▇█"


class Change(NamedTuple):  # not a dataclass: cheaper to make at every start-up (issue 17)
    """A move between two consecutive scored snapshots."""

    start: date | datetime
    end: date | datetime
    before: float
    after: float

    @property
    def delta(self) -> float:
        """after - before, rounded to 2 decimals."""
        return round(self.after - self.before, 2)


def _tz(history: Sequence[Point], as_of: date | datetime | None) -> tzinfo | None:
    for when in [as_of, *(w for w, _ in history)]:
        if isinstance(when, datetime) and when.tzinfo is not None:
            return when.tzinfo
    return None


def _moment(when: date | datetime, tz: tzinfo | None) -> datetime:
    if isinstance(when, datetime):
        return when
    return datetime.combine(when, time.min, tzinfo=tz)


def _scored(history: Sequence[Point], as_of: date | datetime) -> list[tuple[datetime, float]]:
    """Scored points at or before as_of, as comparable datetimes."""
    tz = _tz(history, as_of)
    limit = _moment(as_of, tz)
    return [(_moment(w, tz), s) for w, s in history if s is not None and _moment(w, tz) <= limit]


def score_change(history: Sequence[Point], as_of: date | datetime, days: int) -> float | None:
    """Latest score at or before as_of minus the latest score at or before (as_of - days); None without such
    an older point. If nothing was scored in between, both are the same point and the change is 0."""
    points = _scored(history, as_of)
    cutoff = _moment(as_of, _tz(history, as_of)) - timedelta(days=days)
    older = [s for w, s in points if w <= cutoff]
    if not points or not older:
        return None
    return round(points[-1][1] - older[-1], 2)


def score_drop(history: Sequence[Point], as_of: date | datetime, days: int) -> float | None:
    """How far the latest score sits below the highest score of the window [as_of - days, as_of]:
    max(0, peak - latest), so a recovery shrinks it. None when no point falls in the window."""
    cutoff = _moment(as_of, _tz(history, as_of)) - timedelta(days=days)
    window = [s for w, s in _scored(history, as_of) if w >= cutoff]
    if not window:
        return None
    return round(max(0.0, max(window) - window[-1]), 2)


def low_score_streak(history: Sequence[Point], threshold: float) -> int:
    """How many of the latest scored snapshots in a row are strictly below threshold (0 if the last isn't)."""
    streak = 0
    for _, score in reversed(history):
        if score is None:
            continue
        if score >= threshold:
            break
        streak += 1
    return streak


def sudden_changes(history: Sequence[Point], threshold: float) -> list[Change]:
    """Moves between consecutive scored snapshots whose size |after - before| is at least threshold."""
    scored = [(w, s) for w, s in history if s is not None]
    changes = [Change(a[0], b[0], a[1], b[1]) for a, b in pairwise(scored)]
    return [c for c in changes if abs(c.delta) >= threshold]


def direction(history: Sequence[Point], as_of: date | datetime, days: int, flat_band: float = 2.0) -> str:
    """'up' or 'down' when score_change over `days` is beyond ±flat_band, else 'flat' (also with no data)."""
    change = score_change(history, as_of, days)
    if change is None or abs(change) <= flat_band:
        return "flat"
    return "up" if change > 0 else "down"


def sparkline(values: Sequence[float | None], lo: float | None = None, hi: float | None = None) -> str:
    """One bar ▁..█ per value, scaled from lo to hi (default: the values' own min and max); None is a space.
    A flat series (lo == hi) draws middle bars."""
    present = [v for v in values if v is not None]
    if not present:
        return " " * len(values)
    low = min(present) if lo is None else lo
    high = max(present) if hi is None else hi
    bars = []
    for value in values:
        if value is None:
            bars.append(" ")
        elif high <= low:
            bars.append(BARS[3])
        else:
            index = round((value - low) / (high - low) * (len(BARS) - 1))
            bars.append(BARS[min(len(BARS) - 1, max(0, index))])
    return "".join(bars)
