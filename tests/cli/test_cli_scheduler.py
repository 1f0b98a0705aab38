"""`pulsecheck scheduler` from the command line: one pass with a moved clock, the job list, the leader lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pulsecheck.scheduling.runner import LeaderLock
from pulsecheck.storage.db import Database
from tests.conftest import NOW, SCRIPT, installed


def login_admin(database: Database) -> None:
    """An admin for the login these processes authenticate as (the OS login; PostgreSQL's session user), who
    runs the scheduler here as olga (ops) with PULSECHECK_USER."""
    from pulsecheck.app import authenticated_login
    from pulsecheck.workflow.users import add_user

    with database.transaction() as session:
        add_user(session, authenticated_login(session), ["admin"], NOW)
        add_user(session, "olga", ["ops"], NOW)


def cli(db_url: str, now: datetime, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PULSECHECK_DATABASE_URL": db_url, "PULSECHECK_NOW": now.isoformat(), "PULSECHECK_USER": "olga"}
    return installed(*args, cwd=tmp_path, env=env)


def test_each_due_job_fires_once_across_passes_with_the_clock_moved(factory, db_url, tmp_path):
    factory.team()
    login_admin(factory.database)
    review_id = factory.review()  # created without the CLI: the first pass's reconcile schedules it
    due = NOW + timedelta(days=14)
    first = cli(db_url, due + timedelta(hours=1), "scheduler", "run", "--once", "--json", tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert f"review-due:{review_id}" in report["reconciled"]["added"]
    assert [r["result"] for r in report["runs"] if r["job"].startswith("review-due")] == [
        f"review {review_id}: reminder 1/3 to bob"
    ]
    again = json.loads(
        cli(db_url, due + timedelta(hours=2), "scheduler", "run", "--once", "--json", tmp_path=tmp_path).stdout
    )
    assert [r for r in again["runs"] if r["job"].startswith("review-due")] == []
    jobs = json.loads(cli(db_url, due, "scheduler", "jobs", "--json", tmp_path=tmp_path).stdout)["items"]
    by_id = {j["id"]: j for j in jobs}
    assert by_id[f"review-due:{review_id}"]["next_run_time"].startswith((due + timedelta(days=2)).date().isoformat())
    assert {"dispatch-notifications", "evaluate"} <= set(by_id)


def test_once_refuses_while_another_scheduler_leads(factory, db_url, database, run):
    lock = LeaderLock(database)
    assert lock.acquire()
    try:
        result = run("scheduler", "run", "--once")
        assert result.exit_code == 1
        assert "another scheduler holds the leader lock" in result.output
    finally:
        lock.release()
    assert run("scheduler", "run", "--once").exit_code == 0


def test_a_bad_schedule_in_the_config_is_one_line_naming_it(run, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[cadence.smb]\nschedule = "fortnightly-ish"\n')
    result = run("--config", str(config), "scheduler", "run", "--once")
    assert result.exit_code == 2
    assert "[cadence.smb] schedule" in result.output and "fortnightly-ish" in result.output


class Daemon:
    """`pulsecheck scheduler run` as a real process; a thread reads its stderr lines as they come.

    (Not select() on the pipe and readline(): the buffered reader may take two lines from the pipe at once and
    return one, and select() never fires for the second.)"""

    def __init__(self, db_url: str, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSECHECK_")}
        env |= {"PULSECHECK_DATABASE_URL": db_url, "PULSECHECK_USER": "olga"}
        self.proc = subprocess.Popen(
            [str(SCRIPT), "scheduler", "run"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.proc.poll() is not None and not any(text in line for line in self.lines):
                time.sleep(0.1)  # the reader may still be taking in the last lines
                if not any(text in line for line in self.lines):
                    break
            time.sleep(0.02)
        raise AssertionError(f"no {text!r} within {timeout}s; got {self.lines}")

    def kill(self, sig: int) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


def standby_takes_over(db_url: str, tmp_path: Path) -> None:
    first = Daemon(db_url, tmp_path)
    second = None
    try:
        first.wait_for("leader:")
        second = Daemon(db_url, tmp_path)
        second.wait_for("standby")
        assert not any("leader:" in line for line in second.lines)
        first.kill(signal.SIGKILL)  # dies without cleaning up: the lock must still come free
        second.wait_for("leader:")
        assert second.kill(signal.SIGTERM) == 0  # a clean stop after the running job
        second.wait_for("stopped")
    finally:
        for daemon in (first, second):
            if daemon is not None and daemon.proc.poll() is None:
                daemon.proc.kill()
                daemon.proc.wait()


@pytest.mark.postgres
def test_one_leader_on_postgres_and_the_standby_takes_over_when_it_dies(pg_url, pg_database: Database, tmp_path):
    login_admin(pg_database)
    standby_takes_over(pg_url, tmp_path)


def test_one_leader_on_a_sqlite_file_and_the_standby_takes_over(db_url, database: Database, tmp_path):
    login_admin(database)
    standby_takes_over(db_url, tmp_path)


def test_the_daemon_runs_a_due_job_on_the_wall_clock_and_stops_cleanly(db_url, database: Database, tmp_path):
    from sqlalchemy import select

    from pulsecheck.storage.models import Notification
    from pulsecheck.workflow import reviews
    from pulsecheck.workflow.users import add_user

    real_now = datetime.now(UTC)
    login_admin(database)
    with database.transaction() as session:
        add_user(session, "maria", ["manager"], real_now)
        add_user(session, "bob", ["reviewer"], real_now, manager="maria")
    with database.transaction() as session:
        from pulsecheck.storage.models import Account, User

        session.add(
            Account(external_id="ACME", name="Acme", owner=session.scalar(select(User).where(User.name == "bob")))
        )
    with database.transaction() as session:  # opened two weeks ago, due yesterday
        review = reviews.new_review(session, "ACME", "bob", real_now - timedelta(days=14), timedelta(days=13))
        review_id = review.id
    daemon = Daemon(db_url, tmp_path)
    try:
        daemon.wait_for("leader:")
        line = daemon.wait_for(f"review-due:{review_id}:")
        assert f"review {review_id}: reminder 1/3 to bob" in line
        assert daemon.kill(signal.SIGTERM) == 0
        daemon.wait_for("stopped")
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
    with database.transaction() as session:
        sent = session.execute(select(Notification.kind, Notification.recipient)).all()
    assert [tuple(row) for row in sent] == [("review_due", "bob")]


@pytest.mark.postgres
def test_a_leader_whose_connection_dies_stops_running_jobs_and_competes_again(pg_url, pg_database, tmp_path):
    from sqlalchemy import text

    from pulsecheck.scheduling.runner import LOCK_KEY

    login_admin(pg_database)
    daemon = Daemon(pg_url, tmp_path)
    try:
        daemon.wait_for("leader:")
        with pg_database.engine.connect() as conn:  # what a database restart or a network cut does to it
            schema = conn.execute(text("SELECT hashtext(current_schema())")).scalar_one() & 0xFFFFFFFF
            killed = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND classid = :key AND objid = :schema AND granted"
                ),
                {"key": LOCK_KEY, "schema": schema},  # this test's schema only: other tests may share the server
            ).all()
        assert killed == [(True,)]
        daemon.wait_for("lost the leader lock")
        daemon.lines.clear()
        daemon.wait_for("leader:")  # nobody else holds it: it leads again on a new connection
        assert daemon.kill(signal.SIGTERM) == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
