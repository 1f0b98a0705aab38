"""Set-based writes: multi-row inserts that hand back the new ids, inserts that skip duplicates, and ANALYZE of
the tables a long run grows (PostgreSQL plans its statements from these statistics)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import Table, bindparam, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.instrumentation import manager_of_class

from pulsecheck.storage.models import Base
from pulsecheck.storage.types import UTCDateTime

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

BaseT = TypeVar("BaseT", bound=Base)
StatementT = TypeVar("StatementT")


def table_of(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def insert_returning(session: Session, model: type[Base], rows: Sequence[dict[str, Any]], *keys: str) -> list[Any]:
    """Insert `rows` in multi-row statements; returns (id, *keys) of every new row, in no particular order (SQLite
    cannot tie RETURNING rows to their parameters in bulk: callers match the rows by `keys`)."""
    if not rows:
        return []
    made = ("returning", model, frozenset(rows[0]), keys)
    if made not in _BUILT:
        table = table_of(model)
        _BUILT[made] = _recurring(table.insert(), table, rows[0]).returning(table.c.id, *(table.c[k] for k in keys))
    return list(session.execute(_BUILT[made], rows))


def insert_ignoring(session: Session, model: type[Base], rows: Sequence[dict[str, Any]], key: str) -> None:
    """Insert `rows`, skipping those whose unique `key` is already stored (INSERT ... ON CONFLICT DO NOTHING): no
    lookup first, and a racing twin is a no-op."""
    if rows:
        made = (session.get_bind().dialect.name, model, key, frozenset(rows[0]))
        if made not in _BUILT:  # built once: a commit hook inserts a notice or two per transaction
            statement = _recurring(upsert(session, model), table_of(model), rows[0])
            _BUILT[made] = statement.on_conflict_do_nothing(index_elements=[key])
        session.execute(_BUILT[made], rows)


_BUILT: dict[tuple[Any, ...], Any] = {}  # statements by what they are made of


class _Recurring(UTCDateTime):
    """`UTCDateTime` that converts each distinct value once per statement's processor: the rows of a bulk insert
    share a few timestamps (the run's `now`, a rule's due date), and converting them was a tenth of the rows'
    cost. The same values reach the database, through the same SQL."""

    cache_ok = True

    def bind_processor(self, dialect: Any) -> Any:
        convert = super().bind_processor(dialect)
        if convert is None:
            return None
        known: dict[Any, Any] = {}

        def process(value: Any) -> Any:
            try:
                return known[value]
            except KeyError:
                if len(known) > RECURRING:
                    known.clear()
                found = known[value] = convert(value)
                return found

        return process


RECURRING = 4096  # distinct timestamps kept converted
_ONCE = _Recurring()


def _recurring(statement: StatementT, table: Table, row: dict[str, Any]) -> StatementT:
    """`statement` with the UTC timestamps of `row`'s columns bound as `_Recurring`."""
    stamps = {name: bindparam(name, type_=_ONCE) for name in row if isinstance(table.c[name].type, UTCDateTime)}
    return statement.values(stamps) if stamps else statement  # type: ignore[attr-defined]


def upsert(session: Session, model: type[Base]) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT (with ON CONFLICT) into `model`'s table (a Core statement: no ORM bulk machinery)."""
    # A dialect's module is imported when used: the PostgreSQL one costs a SQLite command's start-up dearly.
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table_of(model))
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table_of(model))


def analyze(session: Session, models: Iterable[type[Base]]) -> None:
    """Refresh PostgreSQL's statistics of these tables (no-op elsewhere): plans made while a table was small
    (a sequential scan of an empty table) would otherwise stay in use as it grows."""
    if session.get_bind().dialect.name != "postgresql":
        return
    names = ", ".join(sorted({table_of(model).name for model in models}))
    if names:
        session.execute(text(f"ANALYZE {names}"))


def transient(model: type[BaseT], rows: Iterable[dict[str, Any]]) -> list[BaseT]:
    """Model objects carrying rows a Core statement wrote (ids included), for code that reads objects (the commit
    hooks). Not in any session; made without the instrumented constructor, which costs ten times as much."""
    manager = manager_of_class(model)
    made = []
    for row in rows:
        obj = manager.new_instance()
        obj.__dict__.update(row)
        made.append(obj)
    return made
