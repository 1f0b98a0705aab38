"""Review transitions per second through the CLI's path on SQLite, commit hooks included, beside the floor.

Set-up (not timed): N accounts, each with a filled-in draft review (bob reviews, maria approves).
Timed: every review through submit, reject, submit, approve, close (5 N transitions), each as the CLI's
`pulsecheck review EVENT ID` does it: `App.transaction()` (the actor's label on the audit chain), the acting user
loaded, `reviews.transition`, and at commit the hooks `app.py` installs (job sync, notices, audit chain).
The login is resolved once per App (the CLI resolves it once per process: one or two SELECTs more per command).
Floor: one SELECT, UPDATE and INSERT per transition (one transaction each) with sqlite3 on the same file.
Also printed: SQL statements per transition (counted on the engine).
Run: .venv/bin/python bench/review_transitions.py [N_REVIEWS]   (default 1000; goal >= 1,000/s)
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from common import report, size_arg
from sqlalchemy import event, func, insert, select

from pulsecheck.app import App, os_login
from pulsecheck.config import load_settings
from pulsecheck.storage.db import Database
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
            review = reviews.new_review(session, f"A{i}", "bob", NOW, timedelta(days=14))
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


def floor(path: Path, ids: list[int]) -> float:
    """Transitions per second at one SELECT, UPDATE and INSERT each, one transaction each, in sqlite3."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    at = NOW.isoformat(sep=" ")
    started = time.perf_counter()
    for review_id in ids:
        for step, actor, comment in STEPS:
            conn.execute("BEGIN")
            state, version = conn.execute("SELECT state, version_id FROM reviews WHERE id = ?", (review_id,)).fetchone()
            conn.execute("UPDATE reviews SET state = ?, updated_at = ?, version_id = ? WHERE id = ? AND version_id = ?",
                         (state, at, version + 1, review_id, version))
            conn.execute("INSERT INTO review_events (review_id, event, from_state, to_state, actor, comment, at, cause)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, 'user')", (review_id, step, state, state, actor, comment, at))
            conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(ids) * len(STEPS) / elapsed


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        ids = build(url, n)
        apps = cli_apps(url)
        database = apps["maria"].db
        statements = [0]

        def count(*_args: Any) -> None:
            statements[0] += 1

        event.listen(database.engine, "before_cursor_execute", count)
        started = time.perf_counter()
        for review_id in ids:
            for step, actor, comment in STEPS:
                app = apps[actor]
                with app.transaction() as session:  # what `pulsecheck review STEP ID --as ACTOR` runs
                    reviews.transition(session, review_id, step, app.actor(session), app.now(), comment=comment)
        elapsed = time.perf_counter() - started
        event.remove(database.engine, "before_cursor_execute", count)
        with database.transaction() as session:
            audit_rows = session.scalar(select(func.count()).select_from(ReviewEvent))
        count_ = len(ids) * len(STEPS)
        database.dispose()
        print(f"{count_} transitions in {elapsed:.2f} s; {audit_rows} review events in all")
        rate_floor = floor(path, ids)
        report("review transitions (CLI path, hooks)", count_ / elapsed, "/s", rate_floor, ">= 1000", higher=True,
               floor_label="SELECT+UPDATE+INSERT in sqlite3")
        report("SQL statements per transition", statements[0] / count_, "", 3.0, "-",
               floor_label="SELECT+UPDATE+INSERT")


if __name__ == "__main__":
    main(size_arg(1000))
