"""storage.bulk's id lists and id-returning inserts on SQLite and PostgreSQL: the rows asked for, the ids handed
back tied to the right rows (PostgreSQL binds a list as one array and takes ids from the sequence first)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError

from pulsecheck.storage.bulk import (
    WROTE,
    among,
    connection_of,
    insert_ignoring,
    insert_many,
    insert_returning,
    table_of,
)
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Notification, User
from pulsecheck.workflow.users import add_user

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
USERS = table_of(User)
BY_ID = select(USERS.c.name).where(among(USERS.c.id, "ids")).order_by(USERS.c.name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Database:
    return request.getfixturevalue("database" if request.param == "sqlite" else "pg_database")


def _rows(names: list[str]) -> list[dict[str, object]]:
    return [
        {"name": name, "email": f"{name}@example.com", "roles": "reviewer", "created_at": NOW} for name in names
    ]


def test_id_returning_insert_ties_each_id_to_its_row_and_lists_find_exactly_the_rows_asked(db: Database) -> None:
    names = [f"user{k:03d}" for k in range(120)]  # over 50: the size psycopg would not prepare as an IN list
    with db.transaction() as session:
        add_user(session, "first", ["admin"], NOW)
        made = insert_returning(session, User, _rows(names), "name")
    ids = {name: new_id for new_id, name in made}
    assert sorted(ids) == names
    with db.transaction() as session:
        stored = dict(session.execute(select(USERS.c.name, USERS.c.id).where(USERS.c.name != "first")).all())
        first = session.scalar(select(USERS.c.id).where(USERS.c.name == "first"))
        asked = [ids[name] for name in names[::3]] + [10_000_000]  # every third, and an id nobody has
        bound = list(session.scalars(BY_ID, {"ids": asked}))
        listed = list(session.scalars(select(User.name).where(among(User.id, values=asked)).order_by(User.name)))
        none = list(session.scalars(BY_ID, {"ids": []}))
    assert stored == ids
    assert [ids[name] for name in names] == sorted(ids.values())  # in the rows' order, after those before
    assert min(ids.values()) > first
    assert bound == listed == names[::3]
    assert none == []


def _notice(key: str, subject: str) -> dict[str, object]:
    return {
        "dedupe_key": key, "kind": "review-due", "channel": "email", "recipient": "bob", "subject": subject,
        "body": f"{subject}\n", "payload": {"key": key, "n": [1, 2]}, "status": "pending", "attempts": 0,
        "created_at": NOW, "next_attempt_at": NOW, "sent_at": None, "last_error": None,
    }  # fmt: skip


def test_inserts_skipping_stored_keys_store_each_key_once_the_first_row_of_it_winning(db: Database) -> None:
    keys = [f"notice-{k:04d}" for k in range(2500)]  # more rows than one statement's page
    with db.transaction() as session:
        insert_ignoring(session, Notification, [_notice("notice-0007", "stored before")], "dedupe_key")
    rows = [_notice(key, f"first {key}") for key in keys] + [_notice("notice-0042", "a later twin")]
    with db.transaction() as session:
        insert_ignoring(session, Notification, rows, "dedupe_key")
        wrote = session.info.get(WROTE)
    with db.transaction() as session:  # again: nothing new
        insert_ignoring(session, Notification, rows[:10], "dedupe_key")
    with db.transaction() as session:
        stored = session.execute(select(Notification.dedupe_key, Notification.subject, Notification.payload)).all()
        unset = session.scalar(select(func.count()).where(Notification.sent_at.is_(None)))
    assert wrote is True  # the scheduler's fence sees the write
    assert sorted(key for key, _, _ in stored) == keys
    subjects = {key: subject for key, subject, _ in stored}
    assert subjects["notice-0007"] == "stored before"
    assert subjects["notice-0042"] == "first notice-0042"
    assert subjects["notice-2499"] == "first notice-2499"
    assert {key: payload for key, _, payload in stored}["notice-1234"] == {"key": "notice-1234", "n": [1, 2]}
    assert unset == len(keys)


@pytest.mark.postgres
def test_a_bulk_insert_into_a_watched_table_records_its_transaction_for_the_live_portfolio(
    pg_database: Database,
) -> None:
    with pg_database.transaction() as session:
        insert_returning(session, User, _rows([f"user{k:03d}" for k in range(30)]), "name")
        noted = session.scalar(
            text("SELECT count(*) FROM book_changes WHERE xid = pg_current_xact_id()::text::bigint")
        )
    assert noted == 1


def test_a_write_refused_by_sqlite_is_sqlalchemys_error_and_nothing_of_its_transaction_is_stored(
    database: Database,
) -> None:
    """The commit hooks' statements go to SQLite's cursor directly; a constraint it refuses is still raised as
    SQLAlchemy's IntegrityError (what `Database.transaction` and the CLI's error handling look for)."""
    rows = _rows(["ann", "bea"])
    with pytest.raises(IntegrityError) as raised:
        with database.transaction() as session:
            insert_many(session, User, rows[:1])
            insert_many(session, User, rows)  # "ann" again: users.name is unique
    assert isinstance(raised.value.orig, sqlite3.IntegrityError)
    assert "users.name" in str(raised.value.orig)
    with database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0


def test_a_statement_listener_sees_the_statements_written_past_sqlalchemys_execution(database: Database) -> None:
    """With a listener on the engine (a test counting statements, `echo`), the statements go through SQLAlchemy's
    execution so that it sees each; without one they are written alike."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    with database.transaction() as session:
        insert_many(session, User, _rows(["ann", "bea"]))  # no listener
    event.listen(database.engine, "before_cursor_execute", listen)
    try:
        with database.transaction() as session:
            insert_many(session, User, _rows(["cat", "dee"]))
    finally:
        event.remove(database.engine, "before_cursor_execute", listen)
    assert [statement.split(" (")[0] for statement in seen] == ["INSERT INTO users"]
    with database.transaction() as session:
        assert list(session.scalars(select(User.name).order_by(User.name))) == ["ann", "bea", "cat", "dee"]


def test_one_session_writes_each_of_its_transactions_on_that_transactions_connection(database: Database) -> None:
    """The connection a transaction's writes look up once (`connection_of`) is not reused by the session's next
    transaction (the first one's is closed by then), nor after a rollback."""
    session = database.session()
    try:
        with session.begin():
            insert_many(session, User, _rows(["ann"]))
            first = connection_of(session)
        with session.begin():
            insert_many(session, User, _rows(["bea"]))
            assert connection_of(session) is session.connection() is not first
        with pytest.raises(RuntimeError), session.begin():
            insert_many(session, User, _rows(["cat"]))
            raise RuntimeError("refused")
        with session.begin():
            insert_many(session, User, _rows(["dee"]))
    finally:
        session.close()
    with database.transaction() as check:
        assert list(check.scalars(select(User.name).order_by(User.name))) == ["ann", "bea", "dee"]


def test_an_echoing_engine_logs_the_statements_written_past_sqlalchemys_execution(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """`echo` (SQLAlchemy's statement log) is listening too: each statement goes through SQLAlchemy and is logged."""
    database.engine.echo = True
    try:
        with caplog.at_level("INFO", logger="sqlalchemy.engine.Engine"), database.transaction() as session:
            insert_many(session, User, _rows(["eve", "fay"]))
    finally:
        database.engine.echo = False
    assert any(record.getMessage().startswith("INSERT INTO users") for record in caplog.records)


def test_where_sqlalchemy_no_longer_tells_whether_anyone_listens_every_statement_takes_its_path() -> None:
    from pulsecheck.storage.bulk import _listened

    class Bare:  # a connection without the private flags `_listened` reads
        engine = dialect = None

    assert _listened(Bare()) is True  # type: ignore[arg-type]
