"""Review transitions per second with audit rows on SQLite, and cold start of `pulsecheck review show 1`.

(Named review_transitions.py: a script called transitions.py would shadow the `transitions` library.)
Run: .venv/bin/python bench/review_transitions.py [N_REVIEWS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Account, ReviewEvent, User
from pulsecheck.workflow import reviews
from pulsecheck.workflow.review_form import parse_form
from pulsecheck.workflow.users import add_user

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        database = Database(url)
        upgrade(database.engine)
        with database.transaction() as session:
            add_user(session, "maria", ["manager"], NOW)
            add_user(session, "bob", ["reviewer"], NOW, manager="maria")
            bob = session.scalars(select(User).where(User.name == "bob")).one()
            for i in range(n):
                session.add(Account(external_id=f"A{i}", name=f"Account {i}", owner=bob))
        form = parse_form({
            "account_goals": "g", "goal_summary": "s", "overall_assessment": "a",
            "next_review_date": date(2027, 3, 1),
            "risks": [{"description": "r", "actions": [{"description": "x", "owner": "bob",
                                                         "due_date": date(2026, 12, 31)}]}],
        }, "bench")
        ids = []
        with database.transaction() as session:
            bob = session.scalars(select(User).where(User.name == "bob")).one()
            for i in range(n):
                review = reviews.new_review(session, f"A{i}", "bob", NOW, timedelta(days=14))
                reviews.fill(session, review.id, form, bob, NOW)
                ids.append(review.id)
        steps = [("submit", "bob", None), ("reject", "maria", "more detail"), ("submit", "bob", None),
                 ("approve", "maria", "ok"), ("close", "maria", None)]
        start = time.perf_counter()
        for review_id in ids:
            for event, actor, comment in steps:
                with database.transaction() as session:  # one command = one transaction, as the CLI does
                    user = session.scalars(select(User).where(User.name == actor)).one()
                    reviews.transition(session, review_id, event, user, NOW, comment=comment)
        elapsed = time.perf_counter() - start
        with database.transaction() as session:
            audit_rows = session.scalar(select(func.count()).select_from(ReviewEvent))
        count = len(ids) * len(steps)
        print(f"transitions: {count} in {elapsed:.2f} s = {count / elapsed:,.0f}/s "
              f"(one transaction each, with audit rows; {audit_rows} audit rows in total)")
        database.dispose()
        script = Path(sys.executable).with_name("pulsecheck")
        samples = []
        for _ in range(7):
            t0 = time.perf_counter()
            subprocess.run([str(script), "--db", url, "--as", "maria", "review", "show", "1"], check=True,
                           capture_output=True)
            samples.append((time.perf_counter() - t0) * 1000)
        print(f"cold start `pulsecheck review show 1`: median {statistics.median(samples):.0f} ms, "
              f"min {min(samples):.0f} ms over {len(samples)} runs")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
