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


def copy_insert(conn: Connection, table: Any, rows: Iterable[dict[str, Any]]) -> int:
    """Insert every row with PostgreSQL's COPY (several times faster than executemany for a large set-up), else
    `bulk_insert`. Values go in as the columns' stored form: datetimes as naive UTC, JSON as its text."""
    if conn.dialect.name != "postgresql":
        return bulk_insert(conn, table, rows)
    import json
    from datetime import UTC, datetime

    from sqlalchemy import JSON

    source = iter(rows)
    first = next(source, None)
    if first is None:
        return 0
    names = list(first)
    as_json = {name for name in names if isinstance(table.c[name].type, JSON)}

    def stored(name: str, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return json.dumps(value) if name in as_json and value is not None else value

    count = 0
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in _chain(first, source):
            copy.write_row([stored(name, row[name]) for name in names])
            count += 1
    return count


def _chain(first: dict[str, Any], rest: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    yield first
    yield from rest
