"""Scheduler figures on SQLite: creating and moving N due-date jobs, start-up with N stored jobs, one pass.

Set-up (not timed): N accounts owned by one reviewer, each with a draft review (bulk inserts, no jobs yet).
Timed:
  create      the review-due jobs of all N reviews, as the commands' hooks write them (one transaction)
  reschedule  every due date moved by a day: the same jobs replaced (one transaction)
  start-up    what `scheduler run` does before its first job: reconcile N stored jobs (all kept) and find the
              due jobs
  pass        `scheduler run --once` when 1% of the reviews are past due: jobs run per second
Run: .venv/bin/python bench/scheduler.py [N]   (default 100000)
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from pulsecheck.config import load_settings
from pulsecheck.scheduling.runner import run_due, runtime
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


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn()
    print(f"{label:<44} {time.perf_counter() - started:8.2f} s")
    return result


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
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

        timed(f"create {n} review-due jobs", lambda: sync_all(timedelta(0)))
        timed(f"reschedule {n} review-due jobs", lambda: sync_all(timedelta(days=1)))

        def start_up() -> int:
            started = time.perf_counter()
            with database.transaction() as session:
                report = reconcile(session, cfg, NOW)
            print(f"  (reconcile {time.perf_counter() - started:.2f} s)")
            with database.transaction() as session:
                due = len(job_store(session, cfg.tz).due(NOW))
            assert report.kept >= n, report
            return due

        due = timed(f"start-up with {n} stored jobs (reconcile + due)", start_up)
        rt = runtime(database, settings, lambda: NOW)
        started = time.perf_counter()
        runs = run_due(rt, NOW)
        elapsed = time.perf_counter() - started
        label = f"one pass: {len(runs)} due jobs run"
        print(f"{label:<44} {elapsed:8.2f} s  ({len(runs) / elapsed:,.0f} jobs/s)")
        print(f"due at start-up: {due}")
        database.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
