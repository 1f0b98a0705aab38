"""KPI readings imported at the speed of the file: CSV records read as lists of cells, each good value converted
once through a memo straight to what the database stores, and on SQLite one probe per chunk for the readings
already stored, then a plain executemany of the new ones.

A record the short path cannot take as it is (a value with spaces, a decimal comma, a new KPI name, a bad value)
goes through `Row` and the checks every importer shares, so the messages and the rules are theirs; only good,
plainly written values take the short path, and they mean the same there.
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, tzinfo
from itertools import islice
from pathlib import Path
from typing import Any, cast

from sqlalchemy import bindparam, exists, func, insert, select
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError
from pulsecheck.storage.models import Account
from pulsecheck.storage.more_tables import KPI_READINGS
from pulsecheck.workflow import imports
from pulsecheck.workflow.imports import NUMBER, FileFormat, InputImport, Problems, Row, cached_moment, iter_values
from pulsecheck.workflow.staging import BulkStatement, large_cache

REQUIRED = ("account", "kpi", "value", "observed_at")
NAMES = ("account_id", "kpi", "value", "observed_at", "source", "imported_at")
MAX_CACHED_ACCOUNTS = 100_000  # account ids kept between chunks: a few MB, and one query per chunk saved
MAX_MARKS = 200_000  # (account, KPI) pairs whose latest reading is remembered: ~40 MB at most
MAX_MEMO = 10_000  # distinct timestamps remembered (an export repeats a few per day across its accounts)

# One reading before its account is resolved: (account external id, kpi, value, stored observed_at, source).
Parsed = tuple[str, str, float, Any, str | None]


class _Parser:
    """Turns records into `Parsed` tuples, the short way when a record allows it, else through `Row`."""

    def __init__(self, session: Session, path: str | Path, tz: tzinfo, fmt: FileFormat, problems: Problems) -> None:
        self.source, self.tz, self.fmt, self.problems = str(path), tz, fmt, problems
        dialect = session.get_bind().dialect
        # On SQLite the stored form is made here, once per distinct text; elsewhere the statement converts.
        convert = KPI_READINGS.c.observed_at.type.dialect_impl(dialect).bind_processor(dialect)
        self.store_time: Callable[[Any], Any] = convert if convert and dialect.name == "sqlite" else (lambda v: v)
        self.times: dict[str, Any] = {}
        self.kpis: set[str] = set()  # names already checked: a file has a handful
        self.header: list[str] = []
        self.places: tuple[int, int, int, int, int | None] = (0, 0, 0, 0, None)
        self.accounts: dict[str, int] = {}  # external id -> id, for the accounts of recent chunks

    def read_header(self, names: list[str]) -> None:
        """Where each column is, from the CSV header."""
        self.header = names
        source = names.index("source") if "source" in names else None
        self.places = (*(names.index(name) for name in REQUIRED), source)  # type: ignore[assignment]

    def chunk(self, records: list[tuple[int, Any]], session: Session) -> list[tuple[Any, ...]]:
        """The readings of a chunk of records as rows of NAMES less imported_at; bad records, and records
        naming an unknown account, go to `problems`. One tight loop: it runs once per row of files of millions."""
        rows: list[tuple[Any, ...]] = []
        later: list[tuple[int, Parsed]] = []  # readings of accounts not yet looked up
        accounts, kpis, times, number_text = self.accounts, self.kpis, self.times, NUMBER.fullmatch
        at_account, at_kpi, at_value, at_time, at_source = self.places
        quick = not self.fmt.decimal_comma
        for number, cells in records:
            if number == 0:
                self.read_header(cells)
                at_account, at_kpi, at_value, at_time, at_source = self.places
                continue
            parsed: Parsed | None = None
            if quick and cells.__class__ is list:
                try:
                    account, kpi, value, moment = (
                        cells[at_account].strip(), cells[at_kpi].strip(), cells[at_value], cells[at_time]
                    )
                    source = cells[at_source].strip() or None if at_source is not None else None
                except AttributeError:  # an absent cell (None): the general path names it
                    account = ""
                if account and kpi in kpis and number_text(value):
                    amount = float(value)
                    stored = times.get(moment)
                    if amount - amount == 0 and (stored is not None or (stored := self._time(moment)) is not None):
                        parsed = (account, kpi, amount, stored, source)
            if parsed is None and (parsed := self.parse(number, cells)) is None:
                continue
            account_id = accounts.get(parsed[0])
            if account_id is None:
                later.append((number, parsed))
            else:
                rows.append((account_id, *parsed[1:]))
        if later:
            rows += self._resolve(session, later)
        return rows

    def parse(self, number: int, values: Any) -> Parsed | None:
        """The reading of one record through `Row`, or None with its problem recorded."""
        if values.__class__ is list:
            values = dict(zip(self.header, values, strict=True))
        row = Row(self.source, number, values, self.fmt.decimal_comma)
        try:
            return self._checked(row)
        except InputError as exc:
            self.problems.add(str(exc), number)
            return None

    def _resolve(self, session: Session, later: list[tuple[int, Parsed]]) -> list[tuple[Any, ...]]:
        """Look up the accounts `later` names (a row naming an unknown one is a problem); their rows."""
        refs = {parsed[0] for _, parsed in later}
        if len(self.accounts) + len(refs) > MAX_CACHED_ACCOUNTS:
            self.accounts.clear()
        query = select(Account.external_id, Account.id).where(Account.external_id.in_(refs))
        self.accounts.update(session.execute(query).all())
        rows = []
        for number, (account, *rest) in later:
            account_id = self.accounts.get(account)
            if account_id is None:
                self.problems.add(f"{self.source}: row {number}, column 'account': unknown account {account!r}", number)
            else:
                rows.append((account_id, *rest))
        return rows

    def _time(self, text: str) -> Any:
        try:
            stored = self.store_time(cached_moment(text, self.tz))
        except ValueError:
            return None
        if len(self.times) >= MAX_MEMO:
            self.times.clear()
        self.times[text] = stored
        return stored

    def _checked(self, row: Row) -> Parsed:
        kpi = row.text("kpi", required=True)
        assert kpi is not None
        if kpi not in self.kpis:
            if not kpi.replace("_", "").isalnum():
                raise InputError(f"{row.where('kpi')}: {kpi!r} is not a KPI name (letters, digits, _)")
            if len(self.kpis) < 1000:
                self.kpis.add(kpi)
        account = row.text("account", required=True)
        value = row.decimal("value", required=True)
        moment = row.moment("observed_at", self.tz, required=True)
        assert account is not None and value is not None
        return account, kpi, value, self.store_time(moment), row.text("source")


class _Store:
    """Writes the new readings of each chunk: those neither stored nor earlier in the file.

    On SQLite it remembers, per (account, KPI), the latest observed_at stored (as stored: text in one fixed
    form): a reading later than that cannot be identical to a stored one and needs no probe, which is every
    reading of an export newer than the last. Past MAX_MARKS pairs it probes every reading instead."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        dialect = session.get_bind().dialect
        self.sqlite = dialect.name == "sqlite"
        convert = KPI_READINGS.c.imported_at.type.dialect_impl(dialect).bind_processor(dialect)
        self.imported_at = convert(now) if convert and self.sqlite else now
        self.statement = None if self.sqlite else BulkStatement(session, _insert_new_reading())
        self.marks: dict[tuple[int, str], Any] | None = self._marks() if self.sqlite else None

    def _marks(self) -> dict[tuple[int, str], Any] | None:
        c = KPI_READINGS.c
        latest = select(c.account_id, c.kpi, func.max(c.observed_at)).group_by(c.account_id, c.kpi)
        connection = self.session.connection()  # raw values: the stored text, not datetimes
        sql = latest.limit(MAX_MARKS + 1).compile(connection, compile_kwargs={"literal_binds": True})
        found = connection.exec_driver_sql(str(sql)).all()
        return None if len(found) > MAX_MARKS else {(account, kpi): at for account, kpi, at in found}

    def write(self, rows: list[tuple[Any, ...]]) -> int:
        """Store the rows not stored yet; how many."""
        if self.statement is not None:  # PostgreSQL: one statement per row checks and inserts
            params = [dict(zip(NAMES, row, strict=False)) for row in rows]
            return self.statement.execute(params, imported_at=self.imported_at)
        fresh = list(dict.fromkeys(rows))  # the first of identical rows in the chunk
        connection = self.session.connection().connection
        cursor = connection.cursor()
        try:
            doubtful = fresh if self.marks is None else self._doubtful(fresh)
            stored = _stored(cursor, doubtful, cast(sqlite3.Connection, connection.dbapi_connection))
            new = [(*row, self.imported_at) for row in fresh if row not in stored]
            columns = ", ".join(NAMES)
            cursor.executemany(f"INSERT INTO {KPI_READINGS.name} ({columns}) VALUES (?, ?, ?, ?, ?, ?)", new)
        finally:
            cursor.close()
        return len(new)

    def _doubtful(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The rows not later than the latest stored reading of their (account, KPI); the marks move on."""
        marks = self.marks
        assert marks is not None
        doubtful = []
        for row in rows:
            key = (row[0], row[1])
            mark = marks.get(key)
            if mark is None or mark.__class__ is str and row[3] > mark:
                marks[key] = row[3]
            else:
                doubtful.append(row)
        if len(marks) > MAX_MARKS:
            self.marks = None
        return doubtful


def _stored(cursor: Any, rows: list[tuple[Any, ...]], connection: sqlite3.Connection) -> set[tuple[Any, ...]]:
    """The `rows` identical to a stored reading (SQLite: one query per as many rows as it binds)."""
    per = max(1, connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // 6)
    found: set[tuple[Any, ...]] = set()
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(part))
        cursor.execute(
            f"WITH k(n, a, kpi, v, o, s) AS (VALUES {values}) SELECT n FROM k WHERE EXISTS (SELECT 1 FROM "
            f"{KPI_READINGS.name} r WHERE r.account_id = k.a AND r.kpi = k.kpi AND r.observed_at = k.o "
            "AND r.value = k.v AND r.source IS k.s)",
            [value for index, row in enumerate(part) for value in (index, *row)],
        )
        found.update(part[n] for (n,) in cursor.fetchall())
    return found


def _insert_new_reading() -> Any:
    """INSERT one reading unless an identical one is stored; executed for many rows at once, each row also sees
    those inserted before it, so duplicates within the file are skipped too."""
    columns = KPI_READINGS.c
    params = {name: bindparam(name, type_=columns[name].type) for name in NAMES}
    stored = exists().where(
        columns.account_id == params["account_id"],
        columns.kpi == params["kpi"],
        columns.observed_at == params["observed_at"],
        columns.value == params["value"],
        columns.source.is_not_distinct_from(params["source"]),
    )
    return insert(KPI_READINGS).from_select(list(NAMES), select(*params.values()).where(~stored))


def import_readings(
    session: Session, path: str | Path, tz: tzinfo, now: datetime, fmt: FileFormat = FileFormat()
) -> InputImport:
    """Append KPI readings; rows identical to a stored reading, or to an earlier row of the file, are skipped
    (raw inputs are never rewritten). Every bad row is reported (up to the limit) and any aborts the import."""
    problems = Problems(str(path), fmt.limits.max_problems)
    parser, store = _Parser(session, path, tz, fmt, problems), _Store(session, now)
    records = iter_values(path, REQUIRED, fmt, problems, lists=True)
    created = total = 0
    with large_cache(session), _collecting_rarely():
        while chunk := list(islice(records, imports.CHUNK)):
            if problems.full:
                break
            rows = parser.chunk(chunk, session)
            total += len(rows)
            if not problems:
                created += store.write(rows)
    problems.raise_if_any()
    return InputImport(created=created, skipped=total - created)


@contextmanager
def _collecting_rarely() -> Iterator[None]:
    """The cyclic garbage collector off while rows stream through: they hold no cycles, and left on it walks
    every chunk's objects again and again (a fifth of an import's time)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
