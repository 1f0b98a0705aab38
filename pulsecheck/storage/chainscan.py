"""Reading the audit chain and the audited tables fast enough to re-check millions of entries: plain DB-API
cursors in keyset batches (no ORM objects, no Row wrappers), and each audited row's canonical content rebuilt
from its raw column values with the converters SQLAlchemy itself would apply, the common SQLite date-time text
taking a short path.

`audit verify` re-checks every entry and every row: this is only a faster way to the same bytes as
`chain.content_of`, and a row whose fast content differs is rebuilt the exact way before it is called a problem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, func, select, true
from sqlalchemy.engine import Dialect

from pulsecheck.storage.entries import Audited, encode_content
from pulsecheck.storage.tables import AUDIT_CHAIN
from pulsecheck.storage.types import UTCDateTime
from pulsecheck.timeutil import iso

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

BATCH = 20_000  # rows per round trip: bounded memory on every driver (psycopg buffers a whole result)
ENTRY_COLUMNS = ("seq", "prev_hash", "kind", "record_id", "content", "hash", "actor", "signer_key", "signature")


def batches(
    session: Session | Connection, query: Callable[[int], str], key: int = 0, start: int = 0
) -> Iterator[Sequence[tuple[Any, ...]]]:
    """The rows of `query(last)` (SQL selecting rows whose key, column `key`, is above `last`, in key order, at
    most BATCH of them) batch after batch from key `start`, through the session's own DB-API connection."""
    from sqlalchemy import Connection

    connection = session if isinstance(session, Connection) else session.connection()
    cursor = connection.connection.cursor()
    try:
        last = start
        while True:
            cursor.execute(query(last))
            rows = cursor.fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][key]
    finally:
        cursor.close()


def entry_batches(session: Session | Connection, after: int = 0) -> Iterator[Sequence[tuple[Any, ...]]]:
    """Every chain entry after seq `after` in order, as plain tuples of ENTRY_COLUMNS, in batches."""
    columns = ", ".join(ENTRY_COLUMNS)
    table = AUDIT_CHAIN.name
    return batches(
        session,
        lambda last: f"SELECT {columns} FROM {table} WHERE seq > {int(last)} ORDER BY seq LIMIT {BATCH}",
        start=after,
    )


def first_repeated(session: Session | Connection, kinds: Sequence[str]) -> tuple[int, str, int] | None:
    """(seq, kind, record id) of the first entry that records an event row a second time, among `kinds`."""
    if not kinds:
        return None
    c = AUDIT_CHAIN.c
    twice = select(c.kind, c.record_id).where(c.kind.in_(kinds)).group_by(c.kind, c.record_id)
    pairs = session.execute(twice.having(func.count() > 1)).all()
    if not pairs:
        return None
    first: tuple[int, str, int] | None = None
    for kind, record_id in pairs:
        seqs = session.scalars(
            select(c.seq).where(c.kind == kind, c.record_id == record_id).order_by(c.seq).limit(2)
        ).all()
        if first is None or seqs[1] < first[0]:
            first = (seqs[1], kind, record_id)
    return first


def _utc_text(exact: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The canonical text of a UTCDateTime value: SQLite's stored `YYYY-MM-DD HH:MM:SS.ffffff` sliced (after
    datetime checked it is a real moment), anything else the exact way."""

    def convert(value: Any) -> Any:
        if value.__class__ is str and len(value) == 26 and value[10] == " " and value[19] == ".":
            try:
                datetime.fromisoformat(value)
            except ValueError:
                return _json_ready(exact(value))
            micro = "" if value.endswith("000000") else value[19:]
            return f"{value[:10]}T{value[11:19]}{micro}+00:00"
        return _json_ready(exact(value))

    return convert


def _json_ready(value: Any) -> Any:
    return iso(value) if isinstance(value, date | datetime) else value


def _exact(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: _json_ready(processor(value))


# SQLite's stored date-time text `YYYY-MM-DD HH:MM:SS.ffffff` as `iso` writes it (`YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`)
# when it is a real date and time; any other text becomes one no content holds, so its row goes the Python way.
_SQL_UTC_TEXT = (
    "CASE WHEN {c} IS NULL THEN NULL WHEN typeof({c}) = 'text' AND length({c}) = 26 AND {c} GLOB "
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]' "
    "AND substr({c}, 12, 2) < '24' AND date(substr({c}, 1, 10)) = substr({c}, 1, 10) "
    "THEN substr({c}, 1, 10) || 'T' || substr({c}, 12, 8) || "
    "CASE WHEN substr({c}, 21) = '000000' THEN '' ELSE substr({c}, 20) END || '+00:00' "
    "ELSE char(1) || 'not a stored moment' END"
)


@dataclass(frozen=True)
class RowContent:
    """How to read one audited table raw and rebuild each row's canonical content: the SQL of a batch (the
    row's fields in sorted order, then the content of the record's latest chain entry) and, per field that
    needs it, a converter from the driver's value to the value the content holds (`fast`, and `exact`: only
    SQLAlchemy's own)."""

    spec: Audited
    names: tuple[str, ...]
    fast: tuple[tuple[str, Callable[[Any], Any]], ...]
    exact: tuple[tuple[str, Callable[[Any], Any]], ...]
    dialect: Dialect

    @classmethod
    def of(cls, spec: Audited, dialect: Dialect) -> RowContent:
        """The reader of `spec`'s table on `dialect`."""
        table = spec.table
        names = tuple(sorted(("id", *spec.fields)))  # the content's key order: the dict needs no sorting
        fast, exact = [], []
        for name in names:
            column_type = table.c[name].type
            try:
                processor = column_type.dialect_impl(dialect).result_processor(dialect, None)
            except TypeError:  # psycopg's Float wants the cursor's type code; its driver value is already a float
                processor = None
            if processor is None:
                continue
            exact.append((name, _exact(processor)))
            use = _utc_text(_exact(processor)) if isinstance(column_type, UTCDateTime) else _exact(processor)
            fast.append((name, use))
        return cls(spec, names, tuple(fast), tuple(exact), dialect)

    def query(self, last: int, upto: int | None = None) -> str:
        """The SQL of the batch of rows after id `last` (up to id `upto`): `names`, the latest entry's content (or
        NULL), the id."""
        table = self.spec.table
        chain = AUDIT_CHAIN.alias("latest")
        latest = (
            select(chain.c.content)
            .where(chain.c.kind == self.spec.kind, chain.c.record_id == table.c.id)
            .order_by(chain.c.seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        statement = (
            select(*(table.c[name] for name in self.names), latest, table.c.id)
            .where(table.c.id > last, table.c.id <= upto if upto is not None else true())
            .order_by(table.c.id)
            .limit(BATCH)
        )
        return str(statement.compile(dialect=self.dialect, compile_kwargs={"literal_binds": True}))

    def content(self, row: Sequence[Any]) -> str:
        """The canonical content of a raw row (the fast way)."""
        record = dict(zip(self.names, row, strict=False))  # names is shorter: the entry content and id stay out
        for name, convert in self.fast:
            value = record[name]
            if value is not None:
                record[name] = convert(value)
        return encode_content(record)

    def exact_content(self, row: Sequence[Any]) -> str:
        """The canonical content of a raw row through SQLAlchemy's own converters only."""
        record = dict(zip(self.names, row, strict=False))
        for name, convert in self.exact:
            record[name] = convert(record[name])
        return encode_content(record)

    def batches(
        self, session: Session | Connection, after: int = 0, upto: int | None = None
    ) -> Iterator[Sequence[tuple[Any, ...]]]:
        """The rows of the table with ids in (`after`, `upto`] in id order, raw: the fields, the latest entry's
        content, the id."""
        return batches(session, lambda last: self.query(last, upto), key=-1, start=after)

    def in_sql(self) -> str | None:
        """On SQLite, the canonical content of a row built by SQLite itself (`json_object` of the sorted fields:
        the same compact text for integers, text and nulls, the date-time text reshaped as `iso` writes it), or
        None where a field needs Python (a converter other than the date-time's, or another dialect)."""
        if self.dialect.name != "sqlite":
            return None
        table = self.spec.table
        quote = self.dialect.identifier_preparer.quote
        converted = dict(self.fast)
        parts = []
        for name in self.names:
            column = f"t.{quote(name)}"
            if name in converted:
                if not isinstance(table.c[name].type, UTCDateTime):
                    return None
                column = _SQL_UTC_TEXT.format(c=column)
            parts.append(f"'{name}', {column}")
        return f"json_object({', '.join(parts)})"

    def suspects_query(self, rendered: str, last: int, upto: int | None = None) -> str:
        """The SQL of the next batch of rows (ids in (`last`, `upto`]) that SQLite cannot vouch for: no chain
        entry, a real value (whose JSON text SQLite and Python may spell differently), or a `rendered`
        content unlike the latest entry's. Same columns as `query`: these go the Python way."""
        table = self.spec.table
        quote = self.dialect.identifier_preparer.quote
        # A real's JSON text may differ between SQLite and Python; text affinity stores none. (A blob makes
        # json_object fail: the caller then checks the table the Python way.)
        unsure = " OR ".join(
            f"typeof(t.{quote(name)}) = 'real'"
            for name in self.names
            if not isinstance(table.c[name].type, String | UTCDateTime)
        )
        kind = self.spec.kind.replace("'", "''")
        latest = (
            f"(SELECT l.content FROM {AUDIT_CHAIN.name} AS l WHERE l.kind = '{kind}' AND l.record_id = t.id "
            "ORDER BY l.seq DESC LIMIT 1)"
        )
        columns = ", ".join(f"t.{quote(name)}" for name in self.names)
        bound = f" AND t.id <= {int(upto)}" if upto is not None else ""
        # No entry: `rendered` (never NULL) IS NOT NULL. The SELECT list is computed only for the rows kept.
        return (
            f"SELECT {columns}, {latest}, t.id FROM {quote(table.name)} AS t WHERE t.id > {int(last)}{bound} "
            f"AND ({unsure or '0'} OR {rendered} IS NOT {latest}) ORDER BY t.id LIMIT {BATCH}"
        )

    def suspects(
        self, session: Session | Connection, rendered: str, after: int = 0, upto: int | None = None
    ) -> Iterator[Sequence[tuple[Any, ...]]]:
        """The batches of `suspects_query`, as `batches` gives the rows of `query`."""
        return batches(session, lambda last: self.suspects_query(rendered, last, upto), key=-1, start=after)

    def count(self, session: Session | Connection, after: int = 0, upto: int | None = None) -> int:
        """How many rows have ids in (`after`, `upto`]."""
        table = self.spec.table
        where = [table.c.id > after] + ([table.c.id <= upto] if upto is not None else [])
        return session.scalar(select(func.count()).select_from(table).where(*where)) or 0

    def entries_without_row(self, session: Session | Connection) -> list[int]:
        """The record ids the chain records for this kind whose row is gone, in chain order."""
        table = self.spec.table
        c = AUDIT_CHAIN.c
        gone = (
            select(c.record_id)
            .where(c.kind == self.spec.kind, ~select(table.c.id).where(table.c.id == c.record_id).exists())
            .group_by(c.record_id)
            .order_by(func.min(c.seq))
        )
        return list(session.scalars(gone))
