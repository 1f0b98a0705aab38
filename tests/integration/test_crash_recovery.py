"""kill -9 in the middle of scheduled work, then restart: the database ends as one uninterrupted run leaves it.

A portfolio of 20,000 accounts (bulk-inserted once, copied per scenario) whose nightly `evaluate` opens 450
escalations and reviews. The reference is one uninterrupted `scheduler run --once`. Each scenario kills
processes at points chosen by polling the database (or /proc for the rules stage), never by sleeping, restarts,
and compares escalations, reviews, review events, notifications, the done run's rule firings and the job table
with the reference, ignoring only row ids; no run is left `running`. Then the same for a cadence job and for
the dispatch job, on smaller data.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from pulsecheck.app import authenticated_login, install_hooks
from pulsecheck.config import load_settings
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Account, Notification, ScoreSnapshot, User
from pulsecheck.workflow.leases import pid_alive
from pulsecheck.workflow.models import approve_model
from pulsecheck.workflow.rulesets import activate
from pulsecheck.workflow.users import add_user
from tests.integration.test_engine_workers import workers_of

pytestmark = pytest.mark.slow  # about a minute on two idle cores: a process per kill, 20,000 accounts
PULSECHECK = str(Path(sys.executable).parent / "pulsecheck")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ACCOUNTS = 20_000
BEFORE = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)  # the first pass: jobs created, evaluate due at 06:00
AT = datetime(2026, 11, 24, 6, 30, tzinfo=UTC)  # the nightly evaluate is due
RULES = """\
version: 1
rules:
  - id: low-score
    when: {score: {lt: 30}}
    then:
      escalate: {severity: high, due_in: 2d}
  - id: renewal-risk
    when:
      all:
        - days_to_renewal: {lte: 45}
        - score: {lt: 60}
    then:
      open_review: {priority: P1, due_in: 7d}
"""
CONFIG = '[scheduler]\nevaluate = "0 6 * * *"\n'


# --- processes ---------------------------------------------------------------------------------------------


@dataclass
class Proc:
    """A pulsecheck process with its stderr in a file."""

    popen: subprocess.Popen[bytes]
    log: Path

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def wait_for(self, text: str, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines() if text in line]
            if found:
                return found[-1]
            assert self.popen.poll() is None, f"exited {self.popen.returncode} before {text!r}: {self.lines()}"
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} within {timeout}s: {self.lines()}")


def start(db: Path, now: datetime, *args: str, config: Path | None = None) -> Proc:
    env = dict(os.environ, PULSECHECK_DATABASE_URL=f"sqlite:///{db}", PULSECHECK_NOW=now.isoformat())
    env["PULSECHECK_USER"] = "olga"
    env["PULSECHECK_CONFIG"] = str(config or db.parent / "pulsecheck.toml")
    log = db.parent / f"{args[0]}-{time.monotonic_ns()}.log"
    with log.open("wb") as err:
        popen = subprocess.Popen([PULSECHECK, *args], stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=db.parent)
    return Proc(popen, log)


def finish(db: Path, now: datetime, *args: str) -> Proc:
    started = time.monotonic()
    proc = start(db, now, *args)
    assert proc.popen.wait(timeout=180) == 0, proc.lines()
    print(f"{' '.join(args)}: ran to the end in {time.monotonic() - started:.1f} s")  # shown with -s
    return proc


def kill_when(proc: Proc, point: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """kill -9 `proc` as soon as `point()` holds (polled every 2 ms). `proc` is stopped (SIGSTOP) while `point()`
    is asked, so it is killed where it was found: running on between the look and the kill, a fast process could
    finish the last batches first. It runs 2 ms between looks: the last three batches of an evaluate and its
    closing commit took under 20 ms, the pause this once had, and the point was never seen."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            proc.popen.send_signal(signal.SIGSTOP)
            if seen(point):
                break
            proc.popen.send_signal(signal.SIGCONT)
            assert proc.popen.poll() is None, f"finished before {what}: {proc.lines()}"
            assert time.monotonic() < deadline, f"never reached {what}"
            assert not any(line.startswith("evaluate:") for line in proc.lines()), f"evaluated before {what}"
            time.sleep(0.002)
    except BaseException:  # a failed look leaves no daemon behind (stopped or running) to outlive the test
        proc.popen.kill()
        proc.popen.wait()
        raise
    workers = workers_of(proc.popen.pid)
    proc.popen.send_signal(signal.SIGKILL)
    proc.popen.wait()
    killed = time.monotonic()
    while any(pid_alive(pid) for pid in workers):
        assert time.monotonic() - killed < 5, f"engine workers {workers} outlived the killed scheduler"
        time.sleep(0.05)
    print(f"killed at {what}, {killed - deadline + timeout:.1f} s in; {len(workers)} engine workers gone")


def seen(point: Callable[[], bool]) -> bool:
    """`point()`, or False when the stopped process holds the write-ahead log index mid-write: SQLite's reader then
    gets no consistent snapshot and gives up with SQLITE_PROTOCOL ("locking protocol"), however often it retries,
    until the writer runs on. The look is simply made again after it has."""
    try:
        return point()
    except sqlite3.OperationalError as exc:
        if "locking protocol" not in str(exc):
            raise
        return False


# --- the database, read as sqlite3 reads it while the scheduler writes ---------------------------------------


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute(sql, params).fetchall()


def runs(db: Path) -> list[tuple[int, str, str | None]]:
    return [tuple(row) for row in query(db, "SELECT id, status, error FROM evaluation_runs ORDER BY id")]  # type: ignore[misc]


def firings_of_running_run(db: Path) -> int:
    """How far the run in progress is: its rule firings (written batch by batch); -1 before it has a row."""
    found = query(
        db,
        "SELECT count(f.id) FROM evaluation_runs r LEFT JOIN rule_firings f ON f.run_id = r.id"
        " WHERE r.status = 'running' GROUP BY r.id",
    )
    return found[0][0] if found else -1


CONTENT = {
    "escalations": "SELECT a.external_id, e.rule_id, e.severity, e.priority, e.reason, e.owner, e.level, e.due_at,"
    " e.opened_at, e.status, e.dedupe_key, e.review_id IS NOT NULL FROM escalations e JOIN accounts a"
    " ON a.id = e.account_id",
    "reviews": "SELECT a.external_id, r.state, r.kind, r.reviewer, r.approver, r.priority, r.due_at,"
    " r.baseline_score, r.baseline_bucket FROM reviews r JOIN accounts a ON a.id = r.account_id",
    "review_events": "SELECT a.external_id, v.event, v.from_state, v.to_state, v.actor, v.at, v.cause"
    " FROM review_events v JOIN reviews r ON r.id = v.review_id JOIN accounts a ON a.id = r.account_id",
    "notifications": "SELECT dedupe_key, kind, channel, recipient, subject, body, status, attempts, created_at,"
    " sent_at FROM notifications",
    "done firings": "SELECT a.external_id, f.rule_id, f.facts, f.fired_at FROM rule_firings f"
    " JOIN accounts a ON a.id = f.account_id JOIN evaluation_runs r ON r.id = f.run_id WHERE r.status = 'done'",
    "jobs": "SELECT id, next_run_time, spec FROM apscheduler_jobs",
}


def content(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {name: sorted(query(db, sql), key=repr) for name, sql in CONTENT.items()}


def assert_same(db: Path, reference: dict[str, list[tuple[Any, ...]]]) -> None:
    """The same rows as the reference, and an audit chain every committed change joined (nothing half-written)."""
    found = content(db)
    for name, rows in reference.items():
        assert len(found[name]) == len(rows), f"{name}: {len(found[name])} rows, reference {len(rows)}"
        assert found[name] == rows, f"{name} differ from the uninterrupted run"
    finish(db, AT, "audit", "verify")


def assert_interrupted_runs_failed(db: Path, interrupted: int) -> None:
    """No run is left running: one done, and one failed per kill after its run row existed, saying why."""
    statuses = runs(db)
    assert [status for _, status, _ in statuses] == ["failed"] * interrupted + ["done"]
    for _, _, error in statuses[:-1]:
        assert error is not None and error.startswith("interrupted: process ") and error.endswith(" is gone")
    done = statuses[-1][0]
    (partial,) = query(
        db,
        "SELECT count(*) FROM rule_firings f WHERE f.run_id IN (SELECT id FROM evaluation_runs WHERE status = 'failed')"
        " AND NOT EXISTS (SELECT 1 FROM rule_firings g WHERE g.run_id = ? AND g.account_id = f.account_id"
        " AND g.rule_id = f.rule_id)",
        done,
    )[0:1]
    assert partial == (0,), "an interrupted run recorded a firing the finished run did not"


# --- the portfolio ---------------------------------------------------------------------------------------------


def audited(db: Path) -> Database:
    """A new database with the commit hooks the commands install (the audit chain among them)."""
    database = Database(f"sqlite:///{db}")
    upgrade(database.engine)
    install_hooks(database, load_settings(db=database.url, config=str(db.parent / "pulsecheck.toml"), env={}))
    return database


def seed(db: Path, accounts: int) -> None:
    """Users, the example model, RULES active, and `accounts` accounts with one score each: every 80th scores
    low (an escalation), every 100th renews within 45 days with a middling score (a review)."""
    (db.parent / "rules.yaml").write_text(RULES)
    (db.parent / "pulsecheck.toml").write_text(CONFIG)
    database = audited(db)
    with database.transaction() as session:
        add_user(session, authenticated_login(session), ["admin"], BEFORE)  # who the daemons authenticate as
        add_user(session, "maria", ["manager"], BEFORE)
        for k in range(20):
            add_user(session, f"csm{k}", ["reviewer"], BEFORE, manager="maria")
        add_user(session, "olga", ["ops"], BEFORE)
        olga = session.scalars(select(User).where(User.name == "olga")).one()
        model_id = approve_model(session, EXAMPLES / "scoring.yaml", olga, BEFORE).id
        activate(session, db.parent / "rules.yaml", olga, BEFORE)
        owners = {name: uid for uid, name in session.execute(select(User.id, User.name))}
    today = BEFORE.date()
    rows, scores = [], []
    for i in range(1, accounts + 1):
        score = 20.0 + i % 7 if i % 80 == 0 else 50.0 + i % 9 if i % 100 == 1 else 65.0 + i % 30
        renewal = today + timedelta(days=30 + i % 10 if i % 100 == 1 else 200 + i % 300)
        rows.append(
            {"id": i, "external_id": f"A{i:06d}", "name": f"Account {i}", "segment": "smb" if i % 2 else "mid",
             "tier": "gold", "arr": 1000.0 + i, "owner_id": owners[f"csm{i % 20}"], "manager_id": owners["maria"],
             "renewal_date": renewal, "contract_start": date(2024, 1, 1), "stage": "live"}
        )  # fmt: skip
        bucket = "unhealthy" if score < 40 else "neutral" if score < 80 else "healthy"
        scores.append(
            {"account_id": i, "as_of": BEFORE - timedelta(days=1), "score": score, "bucket": bucket,
             "model_id": model_id, "provisional": False, "components": []}
        )  # fmt: skip
    with database.engine.begin() as conn:
        conn.execute(insert(Account), rows)
        conn.execute(insert(ScoreSnapshot), scores)
    database.dispose()
    finish(db, BEFORE, "scheduler", "run", "--once")  # the jobs exist; evaluate is next due at 06:00
    settle(db)


def settle(db: Path) -> None:
    """Everything in the main file, so that a copy of it is the whole database."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def copy_of(source: Path, where: Path) -> Path:
    where.mkdir()
    for name in ("pulsecheck.db", "rules.yaml", "pulsecheck.toml"):
        shutil.copy(source.parent / name, where / name)
    return where / "pulsecheck.db"


@dataclass
class Portfolio:
    seed: Path
    reference: dict[str, list[tuple[Any, ...]]]
    firings: int  # of the uninterrupted run


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portfolio]:
    base = tmp_path_factory.mktemp("portfolio")
    db = base / "seed" / "pulsecheck.db"
    db.parent.mkdir()
    seed(db, ACCOUNTS)
    reference = copy_of(db, base / "reference")
    finish(reference, AT, "scheduler", "run", "--once")
    (firings,) = query(reference, "SELECT count(*) FROM rule_firings")[0]
    assert firings == len(range(80, ACCOUNTS + 1, 80)) + len(range(1, ACCOUNTS + 1, 100))
    assert runs(reference) == [(1, "done", None)]
    yield Portfolio(db, content(reference), firings)


# --- evaluate -----------------------------------------------------------------------------------------------


def test_the_daemon_killed_at_five_points_of_an_evaluate_ends_as_one_run(portfolio: Portfolio, tmp_path: Path):
    db = copy_of(portfolio.seed, tmp_path / "daemon")
    total = portfolio.firings
    points: list[tuple[str, Callable[[], bool]]] = [
        ("the rules stage", lambda: bool(workers_of(daemon.popen.pid))),
        ("the run row committed", lambda: firings_of_running_run(db) >= 0),
        ("a third of the batches", lambda: firings_of_running_run(db) >= total // 3),
        ("two thirds of the batches", lambda: firings_of_running_run(db) >= 2 * total // 3),
        ("the last batches", lambda: firings_of_running_run(db) >= total - 30),
    ]
    for what, point in points:
        daemon = start(db, AT, "scheduler", "run")
        kill_when(daemon, point, what)
        if what == "the rules stage":
            assert runs(db) == []  # every firing is computed before anything is written
        else:
            assert runs(db)[-1][1] == "running"
    daemon = start(db, AT, "scheduler", "run")
    daemon.wait_for("evaluate: 20000 account(s)")
    daemon.wait_for("dispatch-notifications:")
    assert daemon.wait_for("was interrupted: process").endswith("is gone: marked failed")
    daemon.popen.send_signal(signal.SIGTERM)
    assert daemon.popen.wait(timeout=60) == 0
    assert_interrupted_runs_failed(db, interrupted=4)
    assert_same(db, portfolio.reference)


def test_a_killed_evaluate_and_killed_once_passes_end_as_one_run(portfolio: Portfolio, tmp_path: Path):
    db = copy_of(portfolio.seed, tmp_path / "once")
    total = portfolio.firings
    manual = start(db, AT, "evaluate")
    kill_when(manual, lambda: firings_of_running_run(db) >= total // 2, "half of a manual evaluate")
    assert [status for _, status, _ in runs(db)] == ["running"]
    once = start(db, AT, "scheduler", "run", "--once")
    kill_when(once, lambda: bool(workers_of(once.popen.pid)), "the rules stage of a pass")
    assert [status for _, status, _ in runs(db)] == ["failed"]  # the pass's start found it
    once = start(db, AT, "scheduler", "run", "--once")
    kill_when(once, lambda: firings_of_running_run(db) >= 4 * total // 5, "four fifths of a pass")
    finish(db, AT, "scheduler", "run", "--once")
    assert_interrupted_runs_failed(db, interrupted=2)
    assert_same(db, portfolio.reference)


# --- a cadence job and the dispatch job ----------------------------------------------------------------------

MONDAY_EARLY = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # the weekly cadence (Mondays 09:00) is due


def small_portfolio(db: Path, accounts: int, config: str) -> None:
    """Users and `accounts` accounts of segment smb, without scores or rules; the jobs created at MONDAY_EARLY."""
    db.parent.mkdir()
    (db.parent / "pulsecheck.toml").write_text(config)
    (db.parent / "rules.yaml").write_text(RULES)
    database = audited(db)
    with database.transaction() as session:
        add_user(session, authenticated_login(session), ["admin"], MONDAY_EARLY)  # who the daemons authenticate as
        add_user(session, "maria", ["manager"], MONDAY_EARLY)
        for k in range(5):
            add_user(session, f"csm{k}", ["reviewer"], MONDAY_EARLY, manager="maria")
        add_user(session, "olga", ["ops"], MONDAY_EARLY)
        owners = {name: uid for uid, name in session.execute(select(User.id, User.name))}
    rows = [
        {"id": i, "external_id": f"C{i:05d}", "name": f"Account {i}", "segment": "smb",
         "owner_id": owners[f"csm{i % 5}"], "manager_id": owners["maria"]}
        for i in range(1, accounts + 1)
    ]  # fmt: skip
    with database.engine.begin() as conn:
        conn.execute(insert(Account), rows)
    database.dispose()
    finish(db, MONDAY_EARLY, "scheduler", "run", "--once")
    settle(db)


def count(db: Path, sql: str) -> int:
    return int(query(db, sql)[0][0])


def test_a_daemon_killed_twice_in_a_cadence_job_opens_each_review_once(tmp_path: Path):
    seed_db = tmp_path / "seed" / "pulsecheck.db"
    small_portfolio(seed_db, 300, '[scheduler]\nevaluate = "off"\n[cadence.smb]\nschedule = "weekly"\n')
    reference = copy_of(seed_db, tmp_path / "reference")
    finish(reference, MONDAY, "scheduler", "run", "--once")
    expected = content(reference)
    assert len(expected["reviews"]) == 300
    db = copy_of(seed_db, tmp_path / "crash")
    for done in (100, 200):  # cadence commits 100 accounts at a time
        daemon = start(db, MONDAY, "scheduler", "run")
        kill_when(daemon, lambda done=done: count(db, "SELECT count(*) FROM reviews") >= done, f"{done} reviews")
    daemon = start(db, MONDAY, "scheduler", "run")
    assert "100 review(s) opened over 300 account(s)" in daemon.wait_for("cadence:smb: cadence smb:")
    daemon.wait_for("dispatch-notifications:")
    daemon.popen.send_signal(signal.SIGTERM)
    assert daemon.popen.wait(timeout=60) == 0
    assert_same(db, expected)


def test_a_pass_killed_twice_while_dispatching_sends_everything_and_loses_nothing(tmp_path: Path):
    outbox = tmp_path / "outbox.jsonl"
    config = f'[scheduler]\nevaluate = "off"\n[notifications.file]\npath = "{outbox}"\n'
    db = tmp_path / "crash" / "pulsecheck.db"
    small_portfolio(db, 10, config)
    rows = [
        {"dedupe_key": f"bulk:{n}", "kind": "review_due", "channel": "file", "recipient": f"csm{n % 5}",
         "subject": f"message {n}", "body": f"body {n}", "payload": {}, "status": "pending", "attempts": 0,
         "created_at": MONDAY_EARLY, "next_attempt_at": MONDAY_EARLY}
        for n in range(600)
    ]  # fmt: skip
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
    database = Database(f"sqlite:///{db}")
    with database.engine.begin() as conn:
        conn.execute(insert(Notification), rows)
    database.dispose()
    sent = "SELECT count(*) FROM notifications WHERE status = 'sent'"
    for done in (200, 400):
        once = start(db, MONDAY, "scheduler", "run", "--once")
        kill_when(once, lambda done=done: count(db, sent) >= done, f"{done} sent")
    finish(db, MONDAY, "scheduler", "run", "--once")  # the dispatch job was still due: it runs again
    statuses = query(db, "SELECT status, attempts, next_attempt_at, count(*) FROM notifications GROUP BY 1, 2, 3")
    in_flight = [row for row in statuses if row[0] == "pending"]
    # A row claimed when its dispatcher died waits out the dispatcher's lease (notifications.dispatch.LEASE)
    assert sum(row[3] for row in in_flight) <= 2
    lease_end = (MONDAY + timedelta(minutes=10)).isoformat(" ")[:19]
    assert all(row[1] == 1 and row[2][:19] == lease_end for row in in_flight)
    finish(db, MONDAY + timedelta(minutes=11), "scheduler", "run", "--once")
    assert count(db, sent) == 600
    delivered = [line for line in outbox.read_text().splitlines() if line]
    keys = {f"bulk:{n}" for n in range(600)}
    assert {key for key in keys if f'"{key}"' in "".join(delivered)} == keys  # every message went out
    assert len(delivered) - 600 <= 2  # at most one message twice per kill, sent but not yet recorded
