"""Shared fixtures: a fresh database per test (SQLite file; PostgreSQL schema when reachable), a fixed clock,
factories for users, accounts and reviews.

The SQLite schema is migrated once per session and copied into each test (`templates`); seeded portfolios that
many tests share are built the same way, once, by `templates.seeded(name, seed)`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

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


class Templates:
    """SQLite files built once per session and copied per test: the migrated schema, and seeded portfolios.

    Copying a file costs well under a millisecond; running the migrations costs ~70 ms, seeding a portfolio
    seconds. A template is checkpointed (WAL folded into the main file) and closed before it is copied.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, Path] = {}

    def schema(self) -> Path:
        """The migrated, empty database."""
        return self._build("schema", upgrade_database)

    def seeded(self, name: str, seed: Callable[[Database], object]) -> Path:
        """The migrated database after `seed(database)`, built on first use under `name`."""
        return self._build(name, seed, start=self.schema())

    def copy(self, template: Path, target: Path) -> Database:
        """A database of its own at `target`, starting as a copy of `template`."""
        shutil.copyfile(template, target)
        return Database(f"sqlite:///{target}")

    def load(self, database: Database, template: Path) -> Database:
        """Replace the content of a test's SQLite `database` with a copy of `template` (closing its connections)."""
        database.dispose()
        target = Path(database.engine.url.database or "")
        for stale in (target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
            stale.unlink(missing_ok=True)
        shutil.copyfile(template, target)
        return database

    def _build(self, name: str, seed: Callable[[Database], object], start: Path | None = None) -> Path:
        if name in self.files:
            return self.files[name]
        path = self.root / f"{name}.db"
        if start is not None:
            shutil.copyfile(start, path)
        database = Database(f"sqlite:///{path}")
        chain.install(database)  # what a seed writes joins the audit chain, as it does through the CLI
        try:
            seed(database)
            with database.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            database.dispose()
        self.files[name] = path  # only once it was built completely
        return path


def upgrade_database(database: Database) -> None:
    """Run the migrations (the seed of the empty schema template)."""
    upgrade(database.engine)


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    return Templates(tmp_path_factory.mktemp("templates"))


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own cache directory (the CLI remembers validated settings there: `config.checked`), for
    it and the commands it runs: none reads what another test left, nor writes in the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pulsecheck.db'}"


@pytest.fixture
def database(db_url: str, tmp_path: Path, templates: Templates) -> Iterator[Database]:
    """A migrated SQLite file at `db_url`, copied from the session's schema template."""
    database = templates.copy(templates.schema(), tmp_path / "pulsecheck.db")
    assert database.url == db_url
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
            user = session.scalar(select(User).where(User.name == actor))
            reviews.fill(session, review_id, form, user, self.now)

    def fire(self, review_id: int, event: str, actor: str, comment: str | None = None) -> str:
        with self.database.transaction() as session:
            user = session.scalar(select(User).where(User.name == actor))
            return reviews.transition(session, review_id, event, user, self.now, comment=comment).state

    def state(self, review_id: int) -> str:
        with self.database.transaction() as session:
            review = session.get(Review, review_id)
            assert review is not None
            return review.state


def activate_rules(database: Database, path: Path, actor: str, now: datetime) -> None:
    """Make the rules file at `path` the active ruleset, as `actor` (the one place tests reach the service)."""
    from pulsecheck.workflow.rulesets import activate

    with database.transaction() as session:
        activate(session, path, session.scalars(select(User).where(User.name == actor)).one(), now)


@pytest.fixture
def factory(database: Database, now: datetime) -> Factory:
    return Factory(database, now)


Run = Callable[..., Result]


# --- identity: the CLI authenticates the OS login (issue 12) ---------------------------------------------

@pytest.fixture
def os_login_admin(database: Database, now: datetime) -> str:
    """An admin user mapped to the OS login running the tests, as `pulsecheck init` makes on a fresh database:
    the CLI's `--as USER` is an admin's, so tests act for any user through it."""
    from pulsecheck.app import os_login

    login = os_login()
    with database.transaction() as session:
        add_user(session, login, ["admin"], now, login=login)
    return login


@pytest.fixture
def run(db_url: str, database: Database, os_login_admin: str, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Invoke the CLI in-process against the test database with a fixed clock: run('--as', 'bob', ...)."""
    monkeypatch.setenv("PULSECHECK_DATABASE_URL", db_url)
    monkeypatch.setenv("PULSECHECK_NOW", NOW.isoformat())
    monkeypatch.delenv("PULSECHECK_USER", raising=False)
    monkeypatch.delenv("PULSECHECK_CONFIG", raising=False)

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def invoke(db_url: str, *args: str) -> Result:
    """The CLI in-process against `db_url` with the fixed clock and no config file (for seeds outside a test)."""
    env: dict[str, str | None] = {
        "PULSECHECK_DATABASE_URL": db_url, "PULSECHECK_NOW": NOW.isoformat(), "PULSECHECK_USER": None,
        "PULSECHECK_CONFIG": None,
    }
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def sample_via_cli(database: Database, *score_dates: str) -> None:
    """The sample team and portfolio imported through the CLI, the example model approved by olga (ops), and the
    portfolio scored at the end of each of `score_dates`."""
    from pulsecheck.demo import examples_dir

    samples = examples_dir()
    commands = [
        ("init",),  # the OS login running the tests becomes the first admin, as on a fresh install
        ("users", "add", "maria", "--role", "manager", "--email", "maria@example.com"),
        *(("users", "add", name, "--role", "reviewer", "--manager", "maria") for name in ("bob", "alice", "carol")),
        ("users", "add", "olga", "--role", "ops"),
        *((noun, "import", str(samples / f"{noun}.csv")) for noun in ("accounts", "readings", "surveys", "issues")),
        ("--as", "olga", "model", "approve", str(samples / "scoring.yaml")),
        *(("score", "--as-of", day) for day in score_dates),
    ]
    for command in commands:
        ok(invoke(database.url, *command))


SCORE_DATES = ("2026-09-30", "2026-10-31", "2026-11-23")  # three month ends of the sample portfolio


def scored_sample(database: Database) -> None:
    """`sample_via_cli` scored at three month ends (the seed of the `scored_sample` template)."""
    sample_via_cli(database, *SCORE_DATES)


# --- what a user sees: exit code, stdout, stderr ------------------------------------------------------


def ok(result: Result | subprocess.CompletedProcess[str]) -> str:
    """The stdout of a command that succeeded: exit 0, and on stderr nothing but `note: ...` lines."""
    code = result.returncode if isinstance(result, subprocess.CompletedProcess) else result.exit_code
    assert code == 0, (code, result.stdout, result.stderr)
    assert all(line.startswith("note: ") for line in result.stderr.splitlines()), result.stderr
    return str(result.stdout)


def as_json(result: Result | subprocess.CompletedProcess[str]) -> Any:
    """The parsed stdout of a command that succeeded."""
    return json.loads(ok(result))


def page_items(result: Result | subprocess.CompletedProcess[str]) -> list[Any]:
    """The rows of a list command's `--json` page, after checking the page's shape: the rows, where they start,
    the limit, and a total that counts at least the rows shown."""
    page = as_json(result)
    assert set(page) == {"total", "offset", "limit", "items"}, page
    assert page["total"] >= page["offset"] + len(page["items"]), page
    return list(page["items"])


def error(result: Result | subprocess.CompletedProcess[str], code: int, stdout: str | None = "") -> str:
    """The one `error: ...` line of a failed command (so no traceback): exit `code`, and `stdout` (by default
    nothing: no success line printed before the failure; None when the command reports on stdout, like verify)."""
    got = result.returncode if isinstance(result, subprocess.CompletedProcess) else result.exit_code
    assert got == code, (got, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    if stdout is not None:
        assert result.stdout == stdout, result.stdout
    return lines[0]


SCRIPT = Path(sys.executable).parent / "pulsecheck"


def installed(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> (
        subprocess.CompletedProcess[str]):
    """The installed console script in a subprocess; of the PULSECHECK_* variables only those in `env` are set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PULSECHECK_")}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env={**clean, **(env or {})},
                          cwd=cwd, timeout=timeout, check=False)


# A small grouped scorecard model (two groups, a concern threshold in raw units, a tracked KPI) that several
# tests compute their expected scorecards from by hand.
TWO_GROUP_MODEL = """\
version: "t1"
groups:
  - {name: value, label: "Value"}
  - {name: care, label: "Care"}
kpis:
  - {name: usage, group: value, weight: 60, scale: {min: 0, max: 100}}
  - {name: tickets, group: care, weight: 40, scale: {min: 20, max: 0}, concern: {above: 10}}
  - {name: logins, weight: 0}
buckets:
  - {name: risk, below: 50, color: red}
  - {name: fine, color: green}
"""
