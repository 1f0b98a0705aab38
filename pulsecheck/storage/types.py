"""Column types shared by the models."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from pulsecheck.timeutil import NAIVE_EPOCH, UTC_EPOCH


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: the same instant on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} would be ambiguous; pass an aware one")
        aware: datetime = value
        return NAIVE_EPOCH + (aware - UTC_EPOCH)  # the instant's UTC wall clock

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite the stored text at once: what SQLite's DATETIME makes of the naive UTC value
        (`2026-11-30 09:00:00.000000`), without its format and mapping per value (half the cost of binding a
        timestamp, of which a review transition binds five or six). Elsewhere the usual: `process_bind_param`, then
        the database type's own processing."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: Any) -> str | None:
            naive = self.process_bind_param(value, dialect)
            return None if naive is None else naive.isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored: datetime = value
        return UTC_EPOCH + (stored - NAIVE_EPOCH)  # the same wall clock, in UTC
