"""Set-based writes: multi-row inserts that hand back the new ids, inserts that skip duplicates, and ANALYZE of
the tables a long run grows (PostgreSQL plans its statements from these statistics)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from sqlalchemy import ARRAY, Boolean, ColumnElement, Connection, CursorResult, Table, any_, bindparam, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, Mapper, Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.sql.visitors import InternalTraversal

from pulsecheck.storage.models import Base
from pulsecheck.storage.types import UTCDateTime

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

BaseT = TypeVar("BaseT", bound=Base)
StatementT = TypeVar("StatementT")
Listed = ColumnElement[Any] | InstrumentedAttribute[Any]  # what `among` lists: a column, of a table or a model


def table_of(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def insert_returning(session: Session, model: type[Base], rows: Sequence[dict[str, Any]], *keys: str) -> list[Any]:
    """Insert `rows` in multi-row statements (PostgreSQL: by executemany, ids taken first); returns (id, *keys) of
    every new row, in no particular order (SQLite cannot tie RETURNING rows to their parameters in bulk: callers
    match the rows by `keys`)."""
    if not rows:
        return []
    table = table_of(model)
    if session.get_bind().dialect.name == "postgresql":
        return _numbered(session, table, rows, keys)
    made = ("returning", model, frozenset(rows[0]), keys)
    if made not in _BUILT:
        _BUILT[made] = _recurring(table.insert(), table, rows[0]).returning(table.c.id, *(table.c[k] for k in keys))
    plan = _plan(session.get_bind().dialect, _BUILT[made], rows[0])
    if plan is None or " RETURNING " not in plan[0]:
        return list(session.execute(_BUILT[made], rows))
    return _returning(session, plan, rows)


MANY_VALUES = 1000  # rows per multi-row INSERT ... RETURNING (SQLAlchemy's own page size)
MAX_PARAMETERS = 32766  # SQLite's bound on a statement's parameters since 3.32


def _returning(session: Session, plan: tuple[str, list[tuple[str, Any]]], rows: Sequence[dict[str, Any]]) -> list[Any]:
    """SQLite's `insert_returning` as SQLAlchemy sends it (multi-row INSERT ... VALUES (...), (...) RETURNING, a
    page of rows at a time), with the values converted as `execute_many` does."""
    sql, converters = plan
    insert_part, _, returned = sql.rpartition(" RETURNING ")
    head, _, one = insert_part.partition(" VALUES ")
    page = max(1, min(MANY_VALUES, MAX_PARAMETERS // max(1, len(converters))))
    found: list[Any] = []
    connection = connection_of(session)
    session.info[WROTE] = True
    for start in range(0, len(rows), page):
        chunk = rows[start : start + page]
        values = [value for row in _values(converters, chunk) for value in row]
        statement = f"{head} VALUES {', '.join([one] * len(chunk))} RETURNING {returned}"
        found += run_sqlite(connection, statement, tuple(values)).fetchall()
    return found


def _numbered(session: Session, table: Table, rows: Sequence[dict[str, Any]], keys: tuple[str, ...]) -> list[Any]:
    """PostgreSQL's `insert_returning`, in the rows' order: their ids taken from the table's sequence first (in one
    statement), then the rows inserted with them by `execute_many` (no RETURNING to tie to its rows). The ids
    are those the multi-row insert would have given: the sequence's next ones, in the rows' order."""
    ids = sorted(session.scalars(_NEXT_IDS, {"table": table.name, "n": len(rows)}))
    made = ("numbered", table, frozenset(rows[0]))
    if made not in _BUILT:
        _BUILT[made] = _recurring(table.insert(), table, rows[0])
    execute_many(session, _BUILT[made], [dict(row, id=new_id) for new_id, row in zip(ids, rows, strict=True)])
    return [(new_id, *(row[k] for k in keys)) for new_id, row in zip(ids, rows, strict=True)]


_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")


def insert_ignoring(session: Session, model: type[Base], rows: Sequence[dict[str, Any]], key: str) -> None:
    """Insert `rows`, skipping those whose unique `key` is already stored (INSERT ... ON CONFLICT DO NOTHING): no
    lookup first, and a racing twin is a no-op."""
    if rows:
        made = (session.get_bind().dialect.name, model, key, frozenset(rows[0]))
        if made not in _BUILT:  # built once: a commit hook inserts a notice or two per transaction
            statement = _recurring(upsert(session, model), table_of(model), rows[0])
            _BUILT[made] = statement.on_conflict_do_nothing(index_elements=[key])
        execute_many(session, _BUILT[made], rows)


def insert_many(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (each naming the same columns) in one executemany."""
    if rows:
        made = ("many", model, frozenset(rows[0]))
        if made not in _BUILT:
            _BUILT[made] = _recurring(table_of(model).insert(), table_of(model), rows[0])
        execute_many(session, _BUILT[made], rows)


WROTE = "pulsecheck.wrote"  # session.info: this transaction wrote something (the scheduler's fence checks those)


def execute_many(session: Session, statement: Any, rows: Sequence[dict[str, Any]]) -> None:
    """`session.execute(statement, rows)` for an INSERT, UPDATE or DELETE without RETURNING (rows naming the same
    keys, at least one), sent to the DBAPI as the statement's compiled SQL with each value converted by its
    column's own bind processor: SQLAlchemy's generic per-row parameter handling cost more than the insert. On
    SQLite the rows go to the cursor's executemany. On PostgreSQL an INSERT of the rows' values (ON CONFLICT DO
    NOTHING at most) goes as multi-row VALUES statements of `MANY_VALUES` rows (the server's cost of a row half of
    executemany's, which SQLAlchemy's psycopg dialect uses: `use_insertmanyvalues_wo_returning` is off), anything
    else (an UPDATE, a DELETE) to psycopg's executemany. The session is marked as having written (what the ORM
    execute event would have said)."""
    plan = _plan(session.get_bind().dialect, statement, rows[0])
    if plan is None:
        session.execute(statement, rows)
        return
    sql, converters = plan
    values = _values(converters, rows)
    session.info[WROTE] = True
    connection = connection_of(session)
    if not sql.startswith(" VALUES "):
        run_sqlite(connection, sql, values, many=True)
        return
    # PostgreSQL: the INSERT's head, one row's VALUES tuple and its tail (ON CONFLICT), as multi-row statements
    head, one, tail = sql[len(" VALUES ") :].split("\0")
    parts = one.split("%s")
    width = len(parts) - 1
    page = max(1, min(MANY_VALUES, PG_PARAMETERS // max(1, width)))
    for start in range(0, len(values), page):
        chunk = values[start : start + page]
        made = (head, one, tail, len(chunk))
        if made not in _PAGES:
            if len(_PAGES) > 64:
                _PAGES.clear()
            rows_sql = ", ".join(_numbered_row(parts, k * width) for k in range(len(chunk)))
            _PAGES[made] = f"{head} VALUES {rows_sql}{tail}"
        _raw_execute(connection, _PAGES[made], [value for row in chunk for value in row])


def execute_one(connection: Connection, statement: Any, row: dict[str, Any]) -> Ran:
    """`connection.execute(statement, row)` for one row of an INSERT, UPDATE or DELETE (RETURNING plain columns
    at most) on SQLite, sent as `execute_many` sends its rows: the statement's compiled SQL, each value converted
    by its column's bind processor (SQLAlchemy's generic parameter handling cost more than such a statement: a
    review transition's own two writes), run by `run_sqlite`. Elsewhere, or where no plan fits, through
    `execute`. The caller marks the session as written (`WROTE`)."""
    plan = _plan(connection.dialect, statement, row) if connection.dialect.name == "sqlite" else None
    if plan is None:
        return cast(CursorResult[Any], connection.execute(statement, row))
    sql, converters = plan
    return run_sqlite(connection, sql, _values(converters, [row])[0])


ReadPlan = tuple[str, list[tuple[str, Any]], list[Any]]  # SQL, bind converters, result processors


def fetch_one(connection: Connection, statement: Any, row: dict[str, Any]) -> Sequence[Any] | None:
    """`connection.execute(statement, row).first()` for a SELECT whose parameters are all in `row`: on SQLite its
    compiled SQL run by `run_sqlite`, each value of the row it reads converted by its column type's result
    processor, as SQLAlchemy's result would (its result object and execution context cost more than the read of a
    review by its key: a review transition's one SELECT). Elsewhere, or where no plan fits, through `execute`."""
    read = _read_plan(connection.dialect, statement, row) if connection.dialect.name == "sqlite" else None
    if read is None:
        return connection.execute(statement, row).first()
    sql, converters, processors = read
    found = run_sqlite(connection, sql, _values(converters, [row])[0]).fetchone()
    if found is None:
        return None
    pairs = zip(processors, found, strict=True)
    return tuple([value if process is None else process(value) for process, value in pairs])


def _read_plan(dialect: Any, statement: Any, row: dict[str, Any]) -> ReadPlan | None:
    """`_plan` of a SELECT and each of its result columns' processors, made once per statement and keys."""
    made = (statement, frozenset(row))
    if made not in _READS:
        plan = _plan(dialect, statement, row)
        _READS[made] = None if plan is None else (*plan, _result_processors(dialect, statement))
    return _READS[made]


def _result_processors(dialect: Any, statement: Any) -> list[Any]:
    """Each result column's processor (None: the DBAPI's value as it is), as SQLAlchemy's result applies them."""
    compiled = statement.compile(dialect=dialect)
    return [column[3]._cached_result_processor(dialect, None) for column in compiled._result_columns]


_READS: dict[tuple[Any, ...], ReadPlan | None] = {}


class Ran(Protocol):
    """What a statement run by `execute_one` or `run_sqlite` gives back: SQLAlchemy's result or the DBAPI cursor."""

    @property
    def lastrowid(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Sequence[Any]: ...


def run_sqlite(connection: Connection, sql: str, values: Any, many: bool = False) -> Ran:
    """`connection.exec_driver_sql(sql, values)` (one row's tuple, or with `many` a list of them for executemany),
    on SQLite without SQLAlchemy's execution context around the DBAPI cursor: building it, its result and the
    statement's events cost more than a commit hook's one-row statement itself (a review transition sends five).
    A database error is raised as SQLAlchemy's, as `exec_driver_sql` raises it. Through `exec_driver_sql` on
    another database (PostgreSQL: SQLAlchemy also tells a lost connection from other errors), and when anything
    listens to the connection's statements (an event listener, such as a test counting them, or `echo`) or
    SQLAlchemy no longer has the flags that tell (private attributes), so that it sees them."""
    if connection.dialect.name != "sqlite" or _listened(connection):
        return connection.exec_driver_sql(sql, values)
    dbapi = connection.dialect.loaded_dbapi  # sqlite3
    cursor = connection.connection.cursor()
    try:
        if many:
            cursor.executemany(sql, values)
        else:
            cursor.execute(sql, values)
    except dbapi.Error as error:
        raise DBAPIError.instance(sql, values, error, dbapi.Error, dialect=connection.dialect) from error
    return cast(Ran, cursor)


def _listened(connection: Connection) -> bool:
    """Whether SQLAlchemy would tell anyone of a statement run on `connection` (its own checks, in
    `Connection._exec_single_context`); True where it cannot be told."""
    try:
        return bool(connection._has_events or connection.engine._has_events or connection.dialect._has_events
                    or connection._echo)  # fmt: skip
    except AttributeError:
        return True


_CONNECTION = "pulsecheck.connection"  # session.info: (transaction, its connection), for `connection_of`


def connection_of(session: Session) -> Connection:
    """`session.connection()`, looked up once per transaction: SQLAlchemy's look-up walks its transaction's
    state machine each time (a review transition asks six times). Asked again while the transaction is not
    active (rolled back by an error) or inside a savepoint, so that SQLAlchemy refuses or answers as it would."""
    transaction = session.get_transaction()
    kept = session.info.get(_CONNECTION)
    if kept is not None and kept[0] is transaction and transaction.is_active and not session.in_nested_transaction():
        return cast(Connection, kept[1])
    connection = session.connection()
    session.info[_CONNECTION] = (session.get_transaction(), connection)
    return connection


def _values(converters: list[tuple[str, Any]], rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each row's parameters in order, each converted by its bind processor: column by column (a C-level map per
    parameter, `zip` making the tuples), not a Python generator per row (a run converts millions of values). A
    few rows (a commit hook's one or two) row by row: a list per column cost several times their values."""
    if len(rows) <= FEW_ROWS:
        return [tuple([row[name] if convert is None else convert(row[name]) for name, convert in converters])
                for row in rows]  # fmt: skip
    columns = [
        list(map(itemgetter(name), rows)) if convert is None else list(map(convert, map(itemgetter(name), rows)))
        for name, convert in converters
    ]
    return list(zip(*columns, strict=True)) if columns else [() for _ in rows]


FEW_ROWS = 16  # up to this many rows, `_values` converts row by row (measured: faster below some 20)


def _numbered_row(parts: list[str], before: int) -> str:
    """One row's VALUES tuple with its parameters numbered ($n) after `before` others."""
    return "".join(part + (f"${before + k + 1}" if k < len(parts) - 1 else "") for k, part in enumerate(parts))


def _raw_execute(connection: Connection, sql: str, values: list[Any]) -> None:
    """Run `sql` (PostgreSQL's own $n parameters) on psycopg's raw cursor: its ordinary one parses a statement's
    %s placeholders again each time once the statement is over 4 KB (a page of rows is), which cost more than
    SQLAlchemy's parameter handling saved. A database error is raised as SQLAlchemy's, as `execute` raises it."""
    import psycopg

    try:
        with psycopg.RawCursor(cast("psycopg.Connection[Any]", connection.connection.driver_connection)) as cursor:
            cursor.execute(sql, values)
    except psycopg.Error as error:
        raise DBAPIError.instance(sql, None, error, psycopg.Error, dialect=connection.dialect) from error


_PAGES: dict[tuple[str, str, str, int], str] = {}  # multi-row statements by their parts and number of rows


PG_PARAMETERS = 65535  # PostgreSQL's bound on a statement's parameters


def _plan(dialect: Any, statement: Any, row: dict[str, Any]) -> tuple[str, list[tuple[str, Any]]] | None:
    """`_raw_plan`, made once per statement, database and keys; None on a database other than SQLite and
    PostgreSQL."""
    if dialect.name not in ("sqlite", "postgresql"):
        return None
    made = (dialect.name, statement, frozenset(row))
    if made not in _RAW:
        _RAW[made] = _raw_plan(dialect, statement, row)
    return _RAW[made]


def _raw_plan(dialect: Any, statement: Any, row: dict[str, Any]) -> tuple[str, list[tuple[str, Any]]] | None:
    """The positional SQL of `statement` for rows of `row`'s keys and each parameter's (key, bind processor);
    None (run it through SQLAlchemy) when a parameter is not one of the row's values (a column default).
    PostgreSQL's named parameters (`%(name)s`) become positional ones (`%s`); an INSERT of one row of them is
    given as " VALUES " and its head, row and tail joined by NUL, for `execute_many`'s multi-row statements."""
    compiled = statement.compile(dialect=dialect, column_keys=list(row), for_executemany=dialect.name == "postgresql")
    processors = compiled._bind_processors
    if dialect.name == "postgresql":
        named = {escaped: name for name, escaped in compiled.escaped_bind_names.items()}
        order = [named.get(name, name) for name in _PYFORMAT.findall(compiled.string)]
        if any(name not in row for name in order) or "%%" in compiled.string:
            return None
        sql, converters = _PYFORMAT.sub("%s", compiled.string), [(name, processors.get(name)) for name in order]
        if (one_row := _ONE_ROW.fullmatch(sql)) is not None:  # marked for `execute_many`'s multi-row VALUES
            sql = " VALUES " + "\0".join(one_row.groups(default=""))
        return sql, converters
    order = compiled.positiontup
    if not compiled.positional or order is None or any(name not in row for name in order):
        return None
    return compiled.string, [(name, processors.get(name)) for name in order]


_PYFORMAT = re.compile(r"%\(([^)]+)\)s")
# An INSERT of one row of parameters (each cast at most), with or without ON CONFLICT DO NOTHING (a row skipped
# as a twin earlier in the same statement, as in an earlier statement), and no RETURNING
_ONE_ROW = re.compile(
    r"(INSERT INTO \w+ \([\w, ]+\)) VALUES (\((?:%s(?:::[A-Z][A-Z ]*)?(?:, )?)+\))"
    r"( ON CONFLICT (?:\([\w, ]+\) )?DO NOTHING)?"
)


_RAW: dict[tuple[Any, ...], tuple[str, list[tuple[str, Any]]] | None] = {}


def among(column: Listed, name: str | None = None, values: Sequence[Any] | None = None) -> Any:
    """`column IN (...)` of a list: bound at execution as `name`, or given as `values`. On PostgreSQL it is
    `column = ANY(:list)`, one array parameter: psycopg prepares (and caches) no statement of over 50 parameters,
    so an IN list of a batch's ids was parsed again each time; elsewhere an expanding IN."""
    return _Among(column, name, None if values is None else list(values))


class _Among(ColumnElement[bool]):
    """Both forms of `among`, the dialect's compiler renders one (the two binds share the list)."""

    inherit_cache = True
    _traverse_internals = [
        ("listed", InternalTraversal.dp_clauseelement),
        ("bound", InternalTraversal.dp_clauseelement),
    ]
    type = Boolean()
    _is_implicitly_boolean = True  # a condition as it stands (no "= 1" on SQLite)

    def __init__(self, column: Listed, name: str | None, values: Sequence[Any] | None) -> None:
        self.listed = column.in_(bindparam(name, values, expanding=True))
        self.bound = column == any_(bindparam(name, values, type_=ARRAY(column.type)))


@compiles(_Among)
def _listed(element: _Among, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.listed, **kw)  # type: ignore[no-any-return]


@compiles(_Among, "postgresql")
def _bound(element: _Among, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.bound, **kw)  # type: ignore[no-any-return]


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


def analyze_threshold(connection: Session | Connection, models: Iterable[type[Base]], least: int) -> int:
    """Rows a process may add to these tables before it first analyzes them: a tenth of the rows PostgreSQL's
    statistics say they hold (autovacuum's own analyze scale factor), at least `least` (elsewhere `least`): a
    first run on empty tables analyzes early, a nightly run adding a few percent to big tables does not."""
    dialect = connection.dialect if isinstance(connection, Connection) else connection.get_bind().dialect
    if dialect.name != "postgresql":
        return least
    rows = connection.scalar(_TABLE_ROWS, {"names": sorted(table_of(model).name for model in models)})
    return max(least, int(rows or 0) // 10)


# The rows PostgreSQL's statistics say these tables hold (-1: never analyzed; a table not there yet: none).
_TABLE_ROWS = text(
    "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) FROM pg_class c"
    " WHERE c.oid IN (SELECT to_regclass(n) FROM unnest(CAST(:names AS text[])) AS n)"
)


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


def persistent(session: Session, model: type[BaseT], row: dict[str, Any]) -> BaseT:
    """An object of `model` carrying `row` (a stored row's column values, its id included), persistent in
    `session` without a query: `transient`, `make_transient_to_detached` and `session.add`, but for the
    save-update cascade of `add`, a walk over every mapped attribute of the class (as dear as a statement) that
    finds nothing to add: the object holds no related object. Through `session.add` where that is not so."""
    obj = transient(model, [row])[0]
    make_transient_to_detached(obj)
    state = instance_state(obj)
    update = getattr(session, "_update_impl", None)  # what `add` does for a detached object, cascade aside
    if update is None or session._warn_on_events or not _relationships(state.mapper).isdisjoint(row):
        session.add(obj)
        return obj
    state._orphaned_outside_of_session = False
    update(state)
    return obj


def _relationships(mapper: Mapper[Any]) -> frozenset[str]:
    """The names of a class's relationships (what a cascade follows), kept per mapper."""
    if mapper not in _RELATIONSHIPS:
        _RELATIONSHIPS[mapper] = frozenset(mapper.relationships.keys())
    return _RELATIONSHIPS[mapper]


_RELATIONSHIPS: dict[Mapper[Any], frozenset[str]] = {}
