"""The web app over a test database: a team with passwords, a clock the test moves, and signed-in clients."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pulsecheck.config import load_settings
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import User
from pulsecheck.web.app import create_app
from pulsecheck.workflow.signin import set_password
from tests.conftest import Factory

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """argon2 with the smallest cost: the same code paths, without seconds of hashing per test on a busy machine."""
    from argon2 import PasswordHasher

    from pulsecheck.workflow import signin

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(signin, "hasher", lambda: cheap)
    signin.dummy_hash.cache_clear()
    yield
    signin.dummy_hash.cache_clear()


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


def give_passwords(database: Database, now: datetime, *names: str) -> None:
    """Set each user's web password to PASSWORD (as an admin would)."""
    with database.transaction() as session:
        admin = User(name="setup", roles="admin")
        for name in names:
            set_password(session, admin, name, PASSWORD, now)


@pytest.fixture
def team(factory: Factory, database: Database, now: datetime) -> Factory:
    """maria (manager), bob (reviewer, maria's report), olga (ops), hank (another manager), ACME owned by bob;
    each with the password PASSWORD."""
    factory.team()
    factory.user("hank", "manager")
    give_passwords(database, now, "maria", "bob", "olga", "hank")
    return factory


@pytest.fixture
def settings_env(db_url: str) -> dict[str, str]:
    return {"PULSECHECK_DATABASE_URL": db_url}


@pytest.fixture
def app(database: Database, clock: Clock, settings_env: dict[str, str]) -> Any:
    settings = load_settings(env=settings_env)
    return create_app(settings, database, clock)


Client = Callable[..., TestClient]


@pytest.fixture
def client(app: Any) -> Iterator[Client]:
    """`client("bob")`: a TestClient signed in as bob (or anonymous with no name)."""
    made: list[TestClient] = []

    def make(name: str | None = None, **kwargs: Any) -> TestClient:
        test_client = TestClient(app, follow_redirects=False, **kwargs)
        made.append(test_client)
        if name is not None:
            sign_in(test_client, name)
        return test_client

    yield make
    for test_client in made:
        test_client.close()


def csrf_of(client: TestClient, path: str = "/signin") -> str:
    """The CSRF token the page at `path` carries in its forms."""
    response = client.get(path)
    found = CSRF.search(response.text)
    assert found, response.text[:500]
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    token = csrf_of(client)
    response = client.post("/signin", data={"name": name, "password": password, "csrf": token, "next": "/"})
    assert response.status_code == 303, response.text[:500]
    return response


def post(client: TestClient, path: str, data: dict[str, Any] | None = None, page: str | None = None,
         **kwargs: Any) -> Any:
    """POST a form from the page `page` (default: `path` without its last part), with that page's CSRF token."""
    form_page = page or path.rsplit("/", 1)[0] or "/"
    return client.post(path, data={"csrf": csrf_of(client, form_page), **(data or {})}, **kwargs)


VERSION = re.compile(r'name="version" value="(\d+)"')


def version_of(client: TestClient, path: str) -> str:
    """The version of the record the page at `path` shows (its forms send it back)."""
    found = VERSION.search(client.get(path).text)
    assert found
    return found.group(1)
