"""Scheduler figures on SQLite: creating and moving N due-date jobs, start-up with N stored jobs, one pass.

Set-up (not timed): N accounts owned by one reviewer, each with a draft review (bulk inserts, no jobs yet).
Timed:
  create      the review-due jobs of all N reviews, as the commands' hooks write them (one transaction)
  reschedule  every due date moved by a day: the same jobs replaced (one transaction)
  start-up    what `scheduler run` does before its first job: reconcile N stored jobs (all kept) and find the
              due jobs
  pass        `scheduler run --once`'s job runs when 1% of the reviews are past due (jobs/s, batches of one kind)
Floors (sqlite3 on the same file, same run): create/reschedule: executemany of the same job rows; start-up: one
SELECT of every stored job id and fingerprint; pass: per due job one UPDATE of its review and of its job row and
one INSERT of a notification (executemany, one transaction).
Run: .venv/bin/python bench/scheduler.py [N]   (default 100000; goals: start-up <= 3 s, pass >= 2,000 jobs/s)
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import report, size_arg
from sqlalchemy import insert, select

from pulsecheck.config import load_settings
from pulsecheck.scheduling.runner import DISPATCH, run_due, runtime
from pulsecheck.scheduling.specs import ScheduleSettings, review_jobs
from pulsecheck.scheduling.store import job_store
from pulsecheck.scheduling.sync import apply, reconcile
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Account, Review, User
from pulsecheck.workflow.users import add_user

# Today, not a fixed date: jobs due by the bench's clock must also be due by the wall clock a started
# APScheduler reads, or its start-up finds a backlog the bench never meant to create.
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def build(database: Database, n: int) -> None:
    with database.transaction() as session:
        add_user(session, "maria", ["manager"], NOW)
        add_user(session, "bob", ["reviewer"], NOW, manager="maria")
        bob = session.scalar(select(User.id).where(User.name == "bob"))
        session.execute(
            insert(Account),
            [{"external_id": f"A{i:06d}", "name": f"Account {i}", "owner_id": bob} for i in range(1, n + 1)],
        )
        session.execute(
            insert(Review),
            [
                {
                    "account_id": i,
                    "state": "draft",
                    "reviewer": "bob",
                    "approver": "maria",
                    # 1% are past due by a day; the rest fall due over the next 100 days
                    "due_at": NOW - timedelta(days=1) if i % 100 == 0 else NOW + timedelta(minutes=i),
                    "created_at": NOW,
                    "updated_at": NOW,
                    "version_id": 1,
                }
                for i in range(1, n + 1)
            ],
        )


def timed(fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def replay_jobs(path: Path) -> float:
    """Seconds to write every stored job row again by executemany into a copy of the table (sqlite3)."""
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT id, next_run_time, job_state, spec FROM apscheduler_jobs").fetchall()
    conn.execute("CREATE TEMP TABLE jobs_copy AS SELECT * FROM apscheduler_jobs WHERE 0")
    started = time.perf_counter()
    conn.executemany("INSERT INTO jobs_copy VALUES (?, ?, ?, ?)", rows)
    conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def read_jobs(path: Path) -> float:
    """Seconds to read every stored job's id and fingerprint (sqlite3)."""
    conn = sqlite3.connect(path)
    started = time.perf_counter()
    conn.execute("SELECT id, spec FROM apscheduler_jobs").fetchall()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def pass_floor(path: Path, due: int) -> float:
    """Jobs per second at one UPDATE of a review, one of a job row and one INSERT of a notification each."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TEMP TABLE notes (key TEXT PRIMARY KEY, body TEXT)")
    ids = [row[0] for row in conn.execute("SELECT id FROM apscheduler_jobs LIMIT ?", (due,))]
    started = time.perf_counter()
    conn.executemany("UPDATE reviews SET reminders_sent = reminders_sent + 1 WHERE id = ?", [(i,) for i in range(due)])
    conn.executemany("UPDATE apscheduler_jobs SET next_run_time = next_run_time + 86400 WHERE id = ?",
                     [(i,) for i in ids])
    conn.executemany("INSERT INTO notes VALUES (?, ?)", [(f"k{i}", "reminder") for i in range(due)])
    conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return due / elapsed


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        settings = load_settings(db=url, env={})
        cfg = ScheduleSettings.from_settings(settings)
        database = Database(url)
        upgrade(database.engine)
        build(database, n)
        print(f"{n} open reviews with due dates on SQLite")

        def sync_all(move: timedelta) -> None:
            with database.transaction() as session:  # what the commit hook does for the reviews a command touched
                wanted = {}
                for review in session.scalars(select(Review)):
                    if move:
                        review.due_at = review.due_at + move  # type: ignore[operator]
                    wanted.update(review_jobs(session, review, cfg))
                apply(session, job_store(session, cfg.tz), wanted, NOW)

        took, _ = timed(lambda: sync_all(timedelta(0)))
        report(f"create {n} review-due jobs", took, "s", replay_jobs(path), "-", floor_label="executemany of the rows")
        took, _ = timed(lambda: sync_all(timedelta(days=1)))
        report(f"reschedule {n} review-due jobs", took, "s", replay_jobs(path), "-",
               floor_label="executemany of the rows")

        def start_up() -> int:
            with database.transaction() as session:
                report_ = reconcile(session, cfg, NOW)
            with database.transaction() as session:
                due = len(job_store(session, cfg.tz).due(NOW))
            assert report_.kept >= n, report_
            return due

        cpu_started = time.process_time()
        took, due = timed(start_up)
        cpu = time.process_time() - cpu_started
        floor = read_jobs(path)
        report(f"start-up with {n} stored jobs (reconcile + due)", took, "s", floor, "<= 3",
               floor_label="SELECT of every job id and fingerprint")
        # CPU time beside it: on a machine shared with other work the wall clock measures the others too
        report(f"start-up with {n} stored jobs (reconcile + due), CPU seconds", cpu, "s", floor, "<= 3",
               floor_label="SELECT of every job id and fingerprint (wall)")
        rt = runtime(database, settings, lambda: NOW)
        marks: list[tuple[str, float, float]] = []
        started, cpu_started = time.perf_counter(), time.process_time()
        runs = run_due(rt, NOW, on_run=lambda run: marks.append((run.id, time.perf_counter(), time.process_time())))
        took = time.perf_counter() - started
        due_jobs = [at for job_id, at, _ in marks if job_id != DISPATCH]
        due_cpu = [cpu for job_id, _, cpu in marks if job_id != DISPATCH]
        print(f"one pass: {len(runs)} of {due} due jobs run in {took:.2f} s (the dispatch of their notifications "
              f"included)")
        rate = len(due_jobs) / (max(due_jobs) - started) if due_jobs else 0.0
        floor = pass_floor(path, max(len(due_jobs), 1))
        report(f"scheduler pass: {len(due_jobs)} due jobs", rate, "jobs/s", floor, ">= 2000", higher=True,
               floor_label="UPDATE+UPDATE+INSERT per job, executemany")
        # CPU time beside it: on a machine shared with other work the wall clock measures the others too
        cpu_rate = len(due_cpu) / (max(due_cpu) - cpu_started) if due_cpu else 0.0
        report(f"scheduler pass: {len(due_jobs)} due jobs, per CPU second", cpu_rate, "jobs/s", floor, ">= 2000",
               higher=True, floor_label="UPDATE+UPDATE+INSERT per job, executemany (wall)")
        report("scheduler pass with the dispatch of what it notified", len(runs) / took, "jobs/s", floor, "-",
               higher=True, floor_label="UPDATE+UPDATE+INSERT per job, executemany")
        database.dispose()


if __name__ == "__main__":
    main(size_arg(100_000))
