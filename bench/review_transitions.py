"""Review transitions per second through the CLI's path on SQLite, commit hooks included, beside the floor.

Set-up (not timed): N accounts, each with a filled-in draft review (bob reviews, maria approves), each due at a
minute of its own: what is worked out from a review's values (its notices' text, its reminder dates) is worked out
for each review, as a one-command CLI process works it out, not served from a cache by another review's.
Timed: every review through submit, reject, submit, approve, close (5 N transitions), each as the CLI's
`pulsecheck review EVENT ID` does it: `App.transaction()` (the actor's label on the audit chain), the acting user
(`App.who`), `reviews.advance` (as the command calls it), and at commit the hooks `app.py` installs (job sync,
notices, audit chain).
The login is resolved once per App (the CLI resolves it once per process: one or two SELECTs more per command).
The timed run has no listener of its own on the engine (the CLI has none: a `before_cursor_execute` listener
attached per transition, as this bench once did, cost 0.8 ms a transition, more than half of what it measured).
Floors, measured in the same run on copies of the file taken before the timed run:
- the same SQL replayed: every statement the same work sends, captured on the engine in an untimed second run of
  it on one copy (same data, same clock: the same statements), run again with sqlite3 on another copy, one
  transaction per transition (what the work costs without the ORM and the Python around it);
- one SELECT, UPDATE and INSERT per transition (one transaction each) with sqlite3: the least a transition can do.
Printed with each: wall and CPU rates (CPU time is steadier than wall time on a shared machine), the load
average, and SQL statements per transition, with the statements of one transition of each event listed.
Run: .venv/bin/python bench/review_transitions.py [N_REVIEWS] [--profile]   (default 1000; goal >= 1,000/s)
With --profile the timed loop runs under cProfile (CPU time) and the functions that take the most of it are listed
after the figures, which then include the profiler's own cost: where the time goes, not how fast it goes.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sqlite3
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from common import captured, report, size_arg, snapshot
from sqlalchemy import func, insert, select

from pulsecheck.app import App, os_login
from pulsecheck.config import load_settings
from pulsecheck.storage.db import SQLITE_PRAGMAS, Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Account, ReviewEvent, User
from pulsecheck.workflow import reviews
from pulsecheck.workflow.review_form import parse_form
from pulsecheck.workflow.users import add_user

NOW = datetime.now(UTC).replace(microsecond=0)
STEPS = [("submit", "bob", None), ("reject", "maria", "more detail"), ("submit", "bob", None),
         ("approve", "maria", "ok"), ("close", "maria", None)]


def build(url: str, n: int) -> list[int]:
    """N accounts owned by bob, each with a filled-in draft review; their ids."""
    database = Database(url)
    upgrade(database.engine)
    with database.transaction() as session:
        add_user(session, "root", ["admin"], NOW, login=os_login())
        add_user(session, "maria", ["manager"], NOW)
        add_user(session, "bob", ["reviewer"], NOW, manager="maria")
        bob = session.scalar(select(User.id).where(User.name == "bob"))
        session.execute(insert(Account), [{"external_id": f"A{i}", "name": f"Account {i}", "owner_id": bob}
                                          for i in range(n)])
    form = parse_form({
        "account_goals": "g", "goal_summary": "s", "overall_assessment": "a",
        "next_review_date": date.today() + timedelta(days=90),
        "risks": [{"description": "r", "actions": [{"description": "x", "owner": "bob",
                                                     "due_date": date.today() + timedelta(days=30)}]}],
    }, "bench")
    ids = []
    with database.transaction() as session:
        bob_user = session.scalars(select(User).where(User.name == "bob")).one()
        for i in range(n):
            review = reviews.new_review(session, f"A{i}", "bob", NOW, timedelta(days=14, minutes=i))
            reviews.fill(session, review.id, form, bob_user, NOW)
            ids.append(review.id)
    database.dispose()
    return ids


def cli_apps(url: str) -> dict[str, App]:
    """An App acting as each user (`--as NAME`), sharing one database with the hooks the CLI installs."""
    apps: dict[str, App] = {}
    for name in ("maria", "bob"):
        settings = load_settings(db=url, user=name, env={"PULSECHECK_NOW": NOW.isoformat()})
        first = next(iter(apps.values()), None)
        apps[name] = App(settings, "review", database=first.db if first else None)
    return apps


def floor(path: Path, ids: list[int]) -> tuple[float, float]:
    """Transitions per second at one SELECT, UPDATE and INSERT each, one transaction each, in sqlite3: wall and
    CPU rates."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:  # as the application's connections
        conn.execute(pragma)
    at = NOW.isoformat(sep=" ")
    started, cpu = time.perf_counter(), time.process_time()
    for review_id in ids:
        for step, actor, comment in STEPS:
            conn.execute("BEGIN")
            state, version = conn.execute("SELECT state, version_id FROM reviews WHERE id = ?", (review_id,)).fetchone()
            conn.execute("UPDATE reviews SET state = ?, updated_at = ?, version_id = ? WHERE id = ? AND version_id = ?",
                         (state, at, version + 1, review_id, version))
            conn.execute("INSERT INTO review_events (review_id, event, from_state, to_state, actor, comment, at, cause)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, 'user')", (review_id, step, state, state, actor, comment, at))
            conn.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    conn.close()
    count = len(ids) * len(STEPS)
    return count / elapsed, count / cpu


Captured = list[tuple[str, Any, bool]]


def replay(path: Path, transactions: list[Captured]) -> tuple[float, float]:
    """Transitions per second when sqlite3 runs the captured statements again, one transaction per transition,
    rows fetched: wall and CPU rates."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:  # as the application's connections
        conn.execute(pragma)
    started, cpu = time.perf_counter(), time.process_time()
    for statements in transactions:
        conn.execute("BEGIN")
        for statement, parameters, many in statements:
            if many:
                conn.executemany(statement, parameters)
            else:
                conn.execute(statement, parameters).fetchall()
        conn.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    conn.close()
    return len(transactions) / elapsed, len(transactions) / cpu


def show_statements(transactions: list[Captured]) -> None:
    """The statements of one review's transitions (the second's: the first also recovers runs), one line each."""
    for (step, actor, _comment), statements in zip(STEPS, transactions, strict=False):
        print(f"-- {step} as {actor}: {len(statements)} statements")
        for statement, _parameters, many in statements:
            print(f"   {'(many) ' if many else ''}{' '.join(statement.split())[:110]}")


def run_all(apps: dict[str, App], ids: list[int], capture: bool = False) -> list[Captured]:
    """Every review through STEPS as the CLI does each (`pulsecheck review STEP ID --as ACTOR`); with `capture`,
    the statements of each transition (a listener on the engine), else nothing is listened to."""
    transactions: list[Captured] = []
    for review_id in ids:
        for step, actor, comment in STEPS:
            app = apps[actor]
            with captured(app.db.engine) if capture else nullcontext([]) as statements:
                with app.transaction() as session:
                    reviews.advance(session, review_id, step, app.who(session), app.now(), comment=comment)
            if capture:
                transactions.append(statements)
    return transactions


def main(n: int, profile: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        ids = build(url, n)
        apps = cli_apps(url)
        database = apps["maria"].db
        copy = snapshot(path)  # the data the timed run meets, for the replay floor
        twin = snapshot(path, "-capture")  # the same again, for the untimed run whose statements are replayed
        os.sync()  # the set-up's writes (the data, its copies) reach the disk before the clock starts, not during
        profiler = cProfile.Profile(time.process_time) if profile else None
        if profiler is not None:
            profiler.enable()
        started, cpu = time.perf_counter(), time.process_time()
        run_all(apps, ids)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
        load = os.getloadavg()
        with database.transaction() as session:
            audit_rows = session.scalar(select(func.count()).select_from(ReviewEvent))
        count_ = len(ids) * len(STEPS)
        database.dispose()
        twins = cli_apps(f"sqlite:///{twin}")
        transactions = run_all(twins, ids, capture=True)
        twins["maria"].db.dispose()
        show_statements(transactions[len(STEPS) : 2 * len(STEPS)] if len(ids) > 1 else transactions)
        statements_ = sum(len(statements) for statements in transactions)
        print(f"{count_} transitions in {elapsed:.2f} s wall, {cpu:.2f} s CPU; {audit_rows} review events in all; "
              f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
        os.sync()  # likewise for the floors: the untimed run's writes are on the disk before they start
        replay_wall, replay_cpu = replay(copy, transactions)
        floor_wall, floor_cpu = floor(path, ids)
        report("review transitions (CLI path, hooks)", count_ / elapsed, "/s", replay_wall, ">= 1000", higher=True,
               floor_label="the same SQL replayed in sqlite3", note=f"load {load[0]:.1f}")
        report("review transitions, CPU time (CLI path, hooks)", count_ / cpu, "/s", replay_cpu, "-", higher=True,
               floor_label="the same SQL replayed in sqlite3, CPU time")
        report("review transitions vs the least SQL", count_ / elapsed, "/s", floor_wall, "-", higher=True,
               floor_label="SELECT+UPDATE+INSERT in sqlite3")
        report("review transitions vs the least SQL, CPU time", count_ / cpu, "/s", floor_cpu, "-", higher=True,
               floor_label="SELECT+UPDATE+INSERT in sqlite3, CPU time")
        report("SQL statements per transition", statements_ / count_, "", 3.0, "-",
               floor_label="SELECT+UPDATE+INSERT")
        if profiler is not None:
            print("\nwhere the CPU time of the timed loop goes (cProfile, cumulative; figures above include it):")
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main(size_arg(1000) if len(sys.argv) > 1 and sys.argv[1] != "--profile" else 1000, "--profile" in sys.argv)
