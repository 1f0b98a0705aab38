"""Bulk inserts for the benchmarks' set-up: rows from a generator, executemany in chunks."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

from sqlalchemy import Connection, insert

CHUNK = 50_000


def bulk_insert(conn: Connection, table: Any, rows: Iterable[dict[str, Any]], chunk: int = CHUNK) -> int:
    """Insert every row (Core executemany, `chunk` rows at a time); returns how many went in."""
    count, source = 0, iter(rows)
    while batch := list(islice(source, chunk)):
        conn.execute(insert(table), batch)
        count += len(batch)
    return count
