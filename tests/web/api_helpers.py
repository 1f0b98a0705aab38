"""Personal access tokens and API clients for the `/api/v1` tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import User
from pulsecheck.workflow.tokens import create_token

MakeToken = Callable[..., str]
Api = Callable[..., TestClient]


def make_token(database: Database, now: datetime, user: str, scope: str = "write", days: int | None = None) -> str:
    """A token `user` created for themself; its secret."""
    with database.transaction() as session:
        actor = session.scalars(select(User).where(User.name == user)).one()
        return create_token(session, actor, f"{user}-{scope}", scope, now, days)[1]


@pytest.fixture
def token(database: Database, now: datetime) -> MakeToken:
    def make(user: str, scope: str = "write", days: int | None = None) -> str:
        return make_token(database, now, user, scope, days)

    return make


@pytest.fixture
def api(app: Any, token: MakeToken) -> Iterator[Api]:
    """`api("bob")`: a client sending a new write token of bob's (`scope="read"`, or `secret=` a given one)."""
    made: list[TestClient] = []

    def make(user: str | None = None, scope: str = "write", secret: str | None = None) -> TestClient:
        headers = {}
        if user is not None or secret is not None:
            headers["Authorization"] = f"Bearer {secret or token(user, scope)}"
        made.append(TestClient(app, headers=headers, follow_redirects=False))
        return made[-1]

    yield make
    for client in made:
        client.close()
