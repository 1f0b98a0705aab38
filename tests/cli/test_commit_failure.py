"""A command whose commit fails says only `error: ...`: no success line, exit 1, the database as it was.

The failure is forced where a real one happens (a full disk, a lost connection): at COMMIT, after the service ran
and its work was flushed. An engine `commit` listener, installed through `pulsecheck.app.install_hooks` like every
other commit hook, raises the OperationalError SQLAlchemy raises when the DBAPI's commit fails.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

import pulsecheck.app
from pulsecheck.demo import examples_dir
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, Deviation, Escalation, Notification
from tests.conftest import NOW, Factory

DISK_ERROR = "disk I/O error"


class CommitSwitch:
    """While `on`, each COMMIT on the CLI's database raises (the commit is then rolled back)."""

    def __init__(self) -> None:
        self.on = False
        self.refused = 0

    def __call__(self, _connection: Any) -> None:
        if self.on:
            self.refused += 1
            raise OperationalError("COMMIT", {}, sqlite3.OperationalError(DISK_ERROR))


@pytest.fixture
def failing_commit(monkeypatch: pytest.MonkeyPatch) -> CommitSwitch:
    switch = CommitSwitch()
    install_hooks = pulsecheck.app.install_hooks

    def install(database: Database, settings: Any) -> None:
        install_hooks(database, settings)
        event.listen(database.engine, "commit", switch)

    monkeypatch.setattr(pulsecheck.app, "install_hooks", install)
    return switch


def snapshot(db_file: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read from the SQLite file by a connection of its own."""
    with sqlite3.connect(db_file) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}


# --- what each command needs before it can succeed -----------------------------------------------------------


def _review(factory: Factory, _database: Database, _tmp: Path) -> None:
    factory.team()
    factory.review()


def _complete_review(factory: Factory, database: Database, tmp: Path) -> None:
    _review(factory, database, tmp)
    factory.complete(1)


def _accounts_file(factory: Factory, _database: Database, tmp: Path) -> None:
    factory.team()
    (tmp / "accounts.csv").write_text("external_id,name,segment,owner\nINITECH,Initech,smb,bob\n", encoding="utf-8")


def _escalation(factory: Factory, database: Database, _tmp: Path) -> None:
    factory.team()
    with database.transaction() as session:
        acme = session.scalars(select(Account).where(Account.external_id == "ACME")).one()
        session.add(Escalation(account_id=acme.id, rule_id="drop", severity="high", priority="P2", reason="score drop",
                               owner="bob", due_at=NOW + timedelta(days=2), opened_at=NOW, dedupe_key="ACME:drop"))


def _deviation(factory: Factory, database: Database, _tmp: Path) -> None:
    factory.team()
    with database.transaction() as session:
        acme = session.scalars(select(Account).where(Account.external_id == "ACME")).one()
        session.add(Deviation(account_id=acme.id, kind="stale", subject="usage", detail="usage is 12 days old",
                              found_at=NOW, last_seen_at=NOW))


def _failed_notification(factory: Factory, database: Database, _tmp: Path) -> None:
    factory.team()
    with database.transaction() as session:
        session.add(Notification(dedupe_key="review:1:submitted:bob", kind="review_submitted", channel="email",
                                 recipient="bob", subject="[pulsecheck] review 1 submitted", body="...", payload={},
                                 status="failed", attempts=5, created_at=NOW, next_attempt_at=NOW,
                                 last_error="smtp: connection refused"))


def _team(factory: Factory, _database: Database, _tmp: Path) -> None:
    factory.team()


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    said: str  # the start of the success line
    setup: Callable[[Factory, Database, Path], None] = _team


CASES = {
    "review new": Case(("--as", "bob", "review", "new", "ACME"), "review 1 opened for ACME"),
    "review set": Case(("--as", "bob", "review", "set", "1", "account_goals", "Grow to 600 seats"),
                       "review 1: account_goals set", _review),
    "review risk add": Case(("--as", "bob", "review", "risk", "add", "1", "Champion leaving"),
                            "review 1: risk 1 added", _review),
    "review submit": Case(("--as", "bob", "review", "submit", "1"), "review 1: submit -> submitted", _complete_review),
    "review withdraw": Case(("--as", "maria", "review", "withdraw", "1", "--comment", "opened twice"),
                            "review 1: withdraw -> closed", _review),
    "users add": Case(("users", "add", "carol", "--role", "reviewer", "--manager", "maria"), "user carol: reviewer"),
    "accounts import": Case(("accounts", "import", "{tmp}/accounts.csv"), "{tmp}/accounts.csv: 1 created",
                            _accounts_file),
    "escalations ack": Case(("--as", "bob", "escalations", "ack", "1"), "escalation 1 acknowledged", _escalation),
    "deviations accept": Case(("--as", "maria", "deviations", "accept", "1", "--reason", "known outage",
                               "--until", "2026-12-31"), "deviation 1 accepted until 2026-12-31", _deviation),
    "model approve": Case(("--as", "olga", "model", "approve", str(examples_dir() / "scoring.yaml")), "model "),
    "rules activate": Case(("--as", "olga", "rules", "activate", str(examples_dir() / "rules.yaml")),
                           "blast radius of "),  # the preview, then `ruleset ... active` once committed
    "cycle start": Case(("--as", "bob", "cycle", "start", "--period", "2026-11"), "cycle 1 started for 2026-11"),
    "outbox retry": Case(("--as", "olga", "outbox", "retry", "1"), "notification 1 queued again", _failed_notification),
}


@pytest.mark.parametrize("name", CASES)
def test_a_failed_commit_prints_only_the_error_and_changes_nothing(
    name: str, failing_commit: CommitSwitch, run: Any, factory: Factory, database: Database, tmp_path: Path
) -> None:
    case = CASES[name]
    case.setup(factory, database, tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in case.args]
    db_file = tmp_path / "pulsecheck.db"
    before = snapshot(db_file)

    failing_commit.on = True
    result = run(*args)
    assert failing_commit.refused >= 1  # the command got as far as committing
    assert (result.exit_code, result.stdout) == (1, ""), (result.stdout, result.stderr)
    assert result.stderr.splitlines() == [f"error: database error: {DISK_ERROR}"]
    assert snapshot(db_file) == before

    failing_commit.on = False  # the same command, committed: it does change the database, and says so
    result = run(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stdout.startswith(case.said.replace("{tmp}", str(tmp_path))), result.stdout
    assert snapshot(db_file) != before


def test_the_cycle_step_and_review_event_lines_wait_for_their_commit(
    failing_commit: CommitSwitch, run: Any, factory: Factory, database: Database, tmp_path: Path
) -> None:
    """Commands that print several lines (cycle start with carried findings, a cycle step) print none of them."""
    factory.team()
    assert run("--as", "bob", "cycle", "start", "--period", "2026-11").exit_code == 0
    before = snapshot(tmp_path / "pulsecheck.db")
    failing_commit.on = True
    for args in (("cycle", "step", "1", "scope", "--note", "checked"),
                 ("cycle", "finding", "add", "1", "--kind", "data", "--detail", "usage feed late"),
                 ("review", "new", "ACME")):
        result = run("--as", "bob", *args)
        assert (result.exit_code, result.stdout) == (1, ""), (args, result.stdout, result.stderr)
        assert result.stderr.splitlines() == [f"error: database error: {DISK_ERROR}"]
    assert snapshot(tmp_path / "pulsecheck.db") == before
