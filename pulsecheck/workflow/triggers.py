"""An APScheduler trigger for a fixed list of moments (reminders, ladder deadlines).

APScheduler 3's OrTrigger over DateTriggers fires only once: each DateTrigger answers "no next time" as soon as
any previous fire time is passed to it. This one walks its list.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from apscheduler.triggers.base import BaseTrigger


class DatesTrigger(BaseTrigger):
    def __init__(self, moments: Iterable[datetime]) -> None:
        self.moments = sorted(moments)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        if previous_fire_time is None:
            return self.moments[0] if self.moments else None
        return next((m for m in self.moments if m > previous_fire_time), None)

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "moments": self.moments}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.moments = state["moments"]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DatesTrigger) and other.moments == self.moments

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return "dates[" + ", ".join(m.isoformat() for m in self.moments) + "]"

    def __repr__(self) -> str:
        return f"<DatesTrigger {self}>"
