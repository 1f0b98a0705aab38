"""What every transaction of the product does besides its own work: keep scheduled jobs in step with the rows,
and write the notifications that review events cause (both in that same transaction)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pulsecheck.config import Settings
    from pulsecheck.storage.db import Database


def install(database: Database, settings: Settings) -> None:
    from pulsecheck.workflow import notices, schedule

    schedule.install(database, settings)
    notices.install(database, settings)
