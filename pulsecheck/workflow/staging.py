"""Temporary tables that let an import check and write any size of file in bounded memory: the keys the file gave
so far (to find one given twice), and rows staged for one set-based statement at the end.

They live in the connection's temporary schema, never in the database file, and are dropped when the import
ends; one left by an import that failed on a pooled connection is dropped before it is made again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, select, text
from sqlalchemy.orm import Session

_TEMP_SCHEMA = {"sqlite": "temp", "postgresql": "pg_temp"}


def temporary_table(session: Session, name: str, *columns: Column[Any]) -> Table:
    """A new, empty temporary table `name` on the session's connection."""
    connection = session.connection()
    schema = _TEMP_SCHEMA[connection.dialect.name]
    connection.execute(text(f"DROP TABLE IF EXISTS {schema}.{name}"))
    table = Table(name, MetaData(), *columns, schema=schema)
    table.create(connection)
    return table


def drop(session: Session, table: Table) -> None:
    """Drop a temporary table made by `temporary_table`."""
    table.drop(session.connection())


class SeenKeys:
    """The keys (such as external ids) a file gave so far, with the row that first gave each."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.table = temporary_table(
            session, "pulsecheck_import_keys", Column("key", String, primary_key=True), Column("row", Integer)
        )
        self.insert = bulk_insert(session, self.table, ("key", "row"))

    def repeated(self, given: list[tuple[str, int]]) -> dict[int, int]:
        """For each (key, row) of `given` whose key an earlier row gave (before, or earlier in `given`), the
        earlier row's number by the later one's; the new keys are remembered."""
        first: dict[str, int] = {}
        again: dict[int, int] = {}
        for key, row in given:
            if key in first:
                again[row] = first[key]
            else:
                first[key] = row
        column = self.table.c
        earlier = dict(self.session.execute(select(column.key, column.row).where(column.key.in_(list(first)))).all())
        for key, row in first.items():
            if key in earlier:
                again[row] = earlier[key]
        fresh = [{"key": key, "row": row} for key, row in first.items() if key not in earlier]
        self.insert.execute(fresh)
        return again

    def close(self) -> None:
        """Drop the table."""
        drop(self.session, self.table)


@contextmanager
def large_cache(session: Session, megabytes: int = 64) -> Iterator[None]:
    """A larger SQLite page cache while a large import writes (its index pages then stay in memory longer),
    the connection's own setting restored afterwards; nothing elsewhere."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = -{megabytes * 1024}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(before or -2000)}")


def bulk_insert(session: Session, table: Table, columns: Iterable[str]) -> BulkStatement:
    """An INSERT of `columns` into `table` for many rows at a time (see BulkStatement)."""
    return BulkStatement(session, insert(table).values({name: bindparam(name) for name in columns}))


class BulkStatement:
    """A Core statement compiled once for the session's connection and executed for many rows at a time straight
    through the DB-API (executemany), each value converted by its column type's bind processor, once per distinct
    value (the timestamps of a file repeat). SQLAlchemy's own per-row parameter handling costs several times
    what SQLite spends storing the row."""

    def __init__(self, session: Session, statement: Any) -> None:
        self.connection = session.connection()
        dialect = self.connection.dialect
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.names = list(compiled.binds)
        # qmark (SQLite) repeats a parameter at each place it appears; pyformat (psycopg) names it
        self.order = [self.names.index(name) for name in compiled.positiontup] if compiled.positional else None
        self.converters = [
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.names
        ]
        self.memos: list[dict[Any, Any]] = [{} for _ in self.names]

    def execute(self, rows: list[dict[str, Any]], **fixed: Any) -> int:
        """Execute for every row (a mapping by parameter name; `fixed` gives parameters the same for all); the
        number of rows the database changed."""
        if not rows:
            return 0
        columns = [
            [_converted(fixed[name], process, memo)] * len(rows)
            if name in fixed
            else [row[name] for row in rows]
            if process is None
            else [_converted(row[name], process, memo) for row in rows]
            for name, process, memo in zip(self.names, self.converters, self.memos, strict=True)
        ]
        params: list[Any]
        if self.order is not None:
            params = list(zip(*(columns[index] for index in self.order), strict=True))
        else:
            params = [dict(zip(self.names, values, strict=True)) for values in zip(*columns, strict=True)]
        result = self.connection.exec_driver_sql(self.sql, params, execution_options={"preserve_rowcount": True})
        return int(result.rowcount)


def _converted(value: Any, process: Any, memo: dict[Any, Any]) -> Any:
    if value is None:
        return None
    if value.__class__ is list or value.__class__ is dict:  # JSON values: distinct, and not hashable
        return process(value)
    converted = memo.get(value)
    if converted is None:
        if len(memo) > 10_000:  # bounded: a file of distinct timestamps just does the work each time
            memo.clear()
        converted = memo[value] = process(value)
    return converted
