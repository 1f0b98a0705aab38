"""storage.bulk's id lists and id-returning inserts on SQLite and PostgreSQL: the rows asked for, the ids handed
back tied to the right rows (PostgreSQL binds a list as one array and takes ids from the sequence first)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from pulsecheck.storage.bulk import among, insert_returning, table_of
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import User
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
