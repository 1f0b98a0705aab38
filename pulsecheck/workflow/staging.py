"""Temporary tables that let an import check and write any size of file in bounded memory: the keys the file gave
so far (to find one given twice), and rows staged for one set-based statement at the end.

They live in the connection's temporary schema, never in the database file, and are dropped when the import
ends; one left by an import that failed on a pooled connection is dropped before it is made again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
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
        if fresh:
            self.session.execute(insert(self.table), fresh)
        return again

    def close(self) -> None:
        """Drop the table."""
        drop(self.session, self.table)
