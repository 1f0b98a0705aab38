"""Shared fixtures: a fresh database per test (SQLite file; PostgreSQL schema when reachable), a fixed clock,
factories for users, accounts and reviews."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pulsecheck.cli import cli
from pulsecheck.storage import chain
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Account, Review, User
from pulsecheck.workflow import reviews
from pulsecheck.workflow.users import add_user

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PG_URL = os.environ.get("PULSECHECK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason to skip."""
    try:
        import psycopg

        with psycopg.connect(PG_URL.replace("+psycopg", ""), connect_timeout=2):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means: skip with the reason
        return f"PostgreSQL at {PG_URL} unreachable: {str(exc).splitlines()[0]}"


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pulsecheck.db'}"


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    upgrade(database.engine)
    chain.install(database)  # what factories write joins the audit chain, as it does through the CLI
    yield database
    database.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test (skips when the server is unreachable)."""
    reason = pg_reachable()
    if reason:
        pytest.skip(reason)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    plain = PG_URL.replace("+psycopg", "")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url)
    upgrade(database.engine)
    yield database
    database.dispose()


class Factory:
    """Builds users, accounts and reviews in one database, each in its own committed transaction."""

    def __init__(self, database: Database, now: datetime) -> None:
        self.database = database
        self.now = now

    def user(self, name: str, *roles: str, manager: str | None = None, email: str | None = None) -> str:
        with self.database.transaction() as session:
            add_user(session, name, list(roles) or ["reviewer"], self.now, email=email, manager=manager)
        return name

    def account(self, external_id: str = "ACME", owner: str | None = None, manager: str | None = None,
                **fields: Any) -> str:
        with self.database.transaction() as session:
            from sqlalchemy import select

            def user(name: str | None) -> User | None:
                return session.scalar(select(User).where(User.name == name)) if name else None

            session.add(Account(external_id=external_id, name=fields.pop("name", external_id.title()),
                                owner=user(owner), manager=user(manager), **fields))
        return external_id

    def team(self) -> None:
        """maria (manager), bob (reviewer reporting to maria), olga (ops), ACME owned by bob."""
        self.user("maria", "manager", email="maria@example.com")
        self.user("bob", "reviewer", manager="maria", email="bob@example.com")
        self.user("olga", "ops")
        self.account("ACME", owner="bob", manager="maria", segment="enterprise", arr=120000.0,
                     renewal_date=date(2027, 1, 15))

    def review(self, account: str = "ACME", actor: str = "bob") -> int:
        with self.database.transaction() as session:
            return reviews.new_review(session, account, actor, self.now, timedelta(days=14)).id

    def complete(self, review_id: int, actor: str = "bob") -> None:
        """Fill every field submit requires."""
        from pulsecheck.workflow.review_form import parse_form

        form = parse_form({
            "account_goals": "Expand to 500 seats", "goal_summary": "320 seats, on track",
            "overall_assessment": "Healthy but exposed to a champion change",
            "next_review_date": (self.now + timedelta(days=90)).date(),
            "risks": [{"description": "Champion leaving", "severity": "high", "evidence": "LinkedIn post",
                       "actions": [{"description": "Build second champion", "owner": "bob",
                                    "due_date": (self.now + timedelta(days=30)).date()}]}],
        }, "test")
        with self.database.transaction() as session:
            user = session.scalar(__import__("sqlalchemy").select(User).where(User.name == actor))
            reviews.fill(session, review_id, form, user, self.now)

    def fire(self, review_id: int, event: str, actor: str, comment: str | None = None) -> str:
        from sqlalchemy import select

        with self.database.transaction() as session:
            user = session.scalar(select(User).where(User.name == actor))
            return reviews.transition(session, review_id, event, user, self.now, comment=comment).state

    def state(self, review_id: int) -> str:
        with self.database.transaction() as session:
            review = session.get(Review, review_id)
            assert review is not None
            return review.state


@pytest.fixture
def factory(database: Database, now: datetime) -> Factory:
    return Factory(database, now)


@pytest.fixture
def run(db_url: str, database: Database, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Invoke the CLI in-process against the test database with a fixed clock: run('--as', 'bob', ...)."""
    monkeypatch.setenv("PULSECHECK_DATABASE_URL", db_url)
    monkeypatch.setenv("PULSECHECK_NOW", NOW.isoformat())
    monkeypatch.delenv("PULSECHECK_USER", raising=False)
    monkeypatch.delenv("PULSECHECK_CONFIG", raising=False)

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke
