"""`users set NAME --chat HANDLE --digest daily`: a user's contact preferences, their own to change."""

from __future__ import annotations

from sqlalchemy import select

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import User
from tests.conftest import Run, error, ok


def stored(database: Database, name: str) -> tuple[str | None, str | None]:
    with database.transaction() as session:
        user = session.scalar(select(User).where(User.name == name))
        assert user is not None
        return user.chat_handle, user.digest


def test_users_set_chat_and_digest(run: Run, database: Database) -> None:
    ok(run("users", "add", "bob", "--role", "reviewer"))
    ok(run("users", "add", "sam", "--role", "reviewer"))
    assert ok(run("--as", "bob", "users", "set", "bob", "--chat", "@U024BE7LH", "--digest", "daily")) == (
        "user bob: chat U024BE7LH, digest daily\n")
    assert stored(database, "bob") == ("U024BE7LH", "daily")
    assert error(run("--as", "sam", "users", "set", "bob", "--chat", "U1"), 1).startswith("error: users add bob:")
    assert error(run("users", "set", "bob", "--chat", "<!channel>"), 2).startswith("error: --chat '<!channel>'")
    assert error(run("users", "set", "nobody", "--digest", "daily"), 2) == "error: users set: unknown user 'nobody'"
    ok(run("users", "set", "bob", "--chat", "", "--digest", "off"))
    assert stored(database, "bob") == (None, None)
