"""`audit verify` on SQLite compares most audited rows with their chain entries inside SQLite: every kind of
change by SQL to a row is still named, and values the product never writes are named rather than crashing."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from pulsecheck.demo.story import DEMO_NOW, run_demo
from pulsecheck.storage.db import Database
from pulsecheck.workflow.audit import verify_chain


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = run_demo(tmp_path_factory.mktemp("demo"), DEMO_NOW, lambda _line: None)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def verify(demo_db: Path, tmp_path: Path, statement: str, workers: int = 1) -> tuple[int, list[str]]:
    """(rows checked, problems) of `audit verify` on a copy of the demo database after `statement`."""
    path = tmp_path / "copy.db"
    shutil.copy(demo_db, path)
    with sqlite3.connect(path) as conn:
        conn.execute(statement)
    database = Database(f"sqlite:///{path}")
    try:
        with database.transaction() as session:
            report = verify_chain(session, workers)
        return report.records, [str(problem) for problem in report.problems]
    finally:
        database.dispose()


def event_id(demo_db: Path) -> int:
    with sqlite3.connect(demo_db) as conn:
        (found,) = conn.execute("SELECT id FROM review_events WHERE comment IS NULL ORDER BY id LIMIT 1").fetchone()
    return int(found)


def audited_rows(demo_db: Path) -> int:
    """Every row of every audited table, counted with plain SQL."""
    from pulsecheck.storage.entries import AUDITED

    with sqlite3.connect(demo_db) as conn:
        return sum(
            conn.execute(f"SELECT count(*) FROM {spec.table_name}").fetchone()[0]
            for spec in AUDITED
        )


def test_an_untouched_database_has_every_row_checked_and_no_problem(demo_db: Path, tmp_path: Path) -> None:
    records, problems = verify(demo_db, tmp_path, "SELECT 1")
    assert problems == []
    assert records == audited_rows(demo_db)


@pytest.mark.parametrize(
    "change",
    [
        "SET review_id = review_id + 1e-13",  # a real SQLite would print as the integer's neighbour
        "SET at = substr(at, 1, 20) || '000001'",  # one microsecond later
        "SET comment = 'a' || char(10) || char(127) || char(8232) || 'é\"\\'",  # escapes in JSON text
        "SET actor = upper(actor)",
        "SET comment = ''",  # nothing becomes empty text
    ],
)
@pytest.mark.parametrize("workers", [1, 2])
def test_each_change_to_an_event_row_is_named(demo_db: Path, tmp_path: Path, change: str, workers: int) -> None:
    event = event_id(demo_db)
    _records, problems = verify(demo_db, tmp_path, f"UPDATE review_events {change} WHERE id = {event}", workers)
    assert problems == [f"review_event {event}: differs from its audit chain entry"]


@pytest.mark.parametrize(
    "change",
    [
        "SET at = '2026-02-30 10:00:00.000000'",  # the shape of a stored moment, but no day that exists
        "SET at = '2026-11-24 25:00:00.000000'",
        "SET actor = CAST(actor AS BLOB)",  # bytes where text belongs
    ],
)
def test_a_value_the_product_never_writes_is_named_not_a_crash(demo_db: Path, tmp_path: Path, change: str) -> None:
    event = event_id(demo_db)
    records, problems = verify(demo_db, tmp_path, f"UPDATE review_events {change} WHERE id = {event}")
    assert problems == [f"review_event {event}: differs from its audit chain entry"]
    assert records == audited_rows(demo_db)


def test_the_same_moment_written_another_way_still_agrees(demo_db: Path, tmp_path: Path) -> None:
    """A date-time stored with a `T` reads back as the same moment: the row still says what the entry says."""
    event = event_id(demo_db)
    change = "SET at = substr(at, 1, 10) || 'T' || substr(at, 12)"
    assert verify(demo_db, tmp_path, f"UPDATE review_events {change} WHERE id = {event}")[1] == []
