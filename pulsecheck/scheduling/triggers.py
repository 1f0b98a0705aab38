"""An APScheduler trigger for a fixed list of moments (reminders, ladder deadlines).

APScheduler 3's OrTrigger over DateTriggers fires only once: each DateTrigger answers "no next time" as soon as
any previous fire time is passed to it. This one walks its list. It pickles its moments as UTC timestamps and
turns them back into datetimes only when asked, so that reading 100k stored jobs at start-up stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from apscheduler.triggers.base import BaseTrigger


class DatesTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 ships no type information
    def __init__(self, moments: Iterable[datetime], key: tuple[Any, ...] | None = None) -> None:
        self.stamps = sorted(m.timestamp() for m in moments)
        self.key = key  # what the moments were computed from (see specs.JobSpec)

    @classmethod
    def of_stamps(cls, stamps: list[float], key: tuple[Any, ...] | None) -> DatesTrigger:
        """A trigger firing at `stamps` (sorted UTC timestamps of another one), made from `key`."""
        made = cls.__new__(cls)
        made.stamps, made.key = list(stamps), key
        return made

    @property
    def moments(self) -> list[datetime]:
        return [datetime.fromtimestamp(stamp, UTC) for stamp in self.stamps]

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        if previous_fire_time is None:  # the first moment, with no list of them all made
            return datetime.fromtimestamp(self.stamps[0], UTC) if self.stamps else None
        after = previous_fire_time.timestamp()
        return next((datetime.fromtimestamp(s, UTC) for s in self.stamps if s > after), None)

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 2, "stamps": self.stamps, "key": self.key}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.stamps = state["stamps"]
        self.key = state["key"]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DatesTrigger) and other.stamps == self.stamps

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return "dates[" + ", ".join(m.isoformat() for m in self.moments) + "]"

    def __repr__(self) -> str:
        return f"<DatesTrigger {self}>"
