"""Lists at portfolio scale: `accounts list --limit 50`, `inbox` and a paged `escalations list`, SQLite.

Set-up (not timed): 40 owners, N accounts with 3 score snapshots each, one escalation per account (N escalations,
owners spread evenly; half open), a draft review per 200 accounts, two mitigation actions per review.
Timed, each beside its floor measured in the same run:
- `accounts list --limit 50` as a subprocess beside the cold start (`users list --limit 1`: imports, settings,
  engine, authentication, one trivial query);
  and the service call in-process beside a plain SQL floor (the same page and COUNT in one sqlite3 query each);
- `inbox` for one owner, subprocess beside the cold start, service beside its plain SQL counts;
- `escalations list --limit 50 --offset N/2` (a page in the middle), subprocess beside the cold start.
Goal: each command <= 0.5 s beyond the cold start.
Run: .venv/bin/python bench/lists.py [N_ACCOUNTS] [--keep DIR [--reuse]]   (default 100000)
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bulk import bulk_insert
from common import report
from sqlalchemy import select

from pulsecheck.app import os_login
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Account, Escalation, MitigationAction, Review, ScoreSnapshot, User
from pulsecheck.workflow.users import add_user

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
OWNERS = 40
SCRIPT = Path(sys.executable).parent / "pulsecheck"
GOAL = 0.5


def _accounts(n: int, rng: random.Random, owners: list[int]) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        yield {
            "id": i, "external_id": f"A{i:06d}", "name": f"Account {i}", "segment": ("smb", "enterprise")[i % 2],
            "arr": float(rng.randrange(5_000, 400_000, 1_000)), "owner_id": owners[i % len(owners)],
            "renewal_date": NOW.date() + timedelta(days=rng.randrange(-30, 400)),
        }


def _snapshots(n: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for account_id in range(1, n + 1):
        for months in (2, 1, 0):
            score = rng.uniform(20, 95)
            yield {
                "account_id": account_id, "as_of": NOW - timedelta(days=30 * months), "score": round(score, 2),
                "bucket": "unhealthy" if score < 40 else "neutral" if score < 80 else "healthy", "model_id": 1,
                "components": [], "provisional": False,
            }


def _escalations(n: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for account_id in range(1, n + 1):
        yield {
            "account_id": account_id, "rule_id": "drop", "severity": "high", "priority": rng.choice(("P1", "P2", "P3")),
            "reason": "score drop", "owner": f"owner{account_id % OWNERS + 1}", "level": 0,
            "opened_at": NOW - timedelta(days=rng.randrange(0, 90)), "due_at": NOW + timedelta(days=2),
            "status": "open" if account_id % 2 else "acknowledged", "dedupe_key": f"{account_id}:drop",
        }


def _reviews(n: int) -> Iterator[dict[str, Any]]:
    for account_id in range(1, n + 1, 200):
        yield {
            "id": account_id, "account_id": account_id, "state": "draft", "kind": "cadence",
            "reviewer": f"owner{account_id % OWNERS + 1}", "approver": "olga", "priority": "P3",
            "due_at": NOW + timedelta(days=3), "created_at": NOW, "updated_at": NOW, "version_id": 1,
        }


def _actions(n: int) -> Iterator[dict[str, Any]]:
    for account_id in range(1, n + 1, 200):
        for number in (1, 2):
            yield {
                "review_id": account_id, "number": number, "risk_number": 1, "description": "call the sponsor",
                "owner": f"owner{account_id % OWNERS + 1}", "due_date": date(2026, 11, 20 + number * 3),
                "status": "open",
            }


def build(path: Path, n: int) -> Database:
    """A migrated SQLite database at `path` with the portfolio described in the module docstring."""
    from pulsecheck.storage.models import ScoringModelVersion

    database = Database(f"sqlite:///{path}")
    upgrade(database.engine)
    rng = random.Random(16)
    with database.transaction() as session:
        add_user(session, "olga", ["manager", "admin"], NOW, login=os_login())
        for i in range(1, OWNERS + 1):
            add_user(session, f"owner{i}", ["reviewer"], NOW, manager="olga")
        session.add(ScoringModelVersion(id=1, version="1", content="", sha256="0" * 64, status="approved"))
        session.flush()
        owners = list(session.scalars(select(User.id).where(User.name != "olga").order_by(User.id)))
    with database.engine.begin() as conn:
        bulk_insert(conn, Account.__table__, _accounts(n, rng, owners))
        bulk_insert(conn, ScoreSnapshot.__table__, _snapshots(n, rng))
        bulk_insert(conn, Escalation.__table__, _escalations(n, rng))
        bulk_insert(conn, Review.__table__, _reviews(n))
        bulk_insert(conn, MitigationAction.__table__, _actions(n))
    return database


def best(fn: Callable[[], object], runs: int = 5) -> float:
    """The fastest of `runs` timings of fn (seconds)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def cli(url: str, *args: str) -> Callable[[], object]:
    env = {**os.environ, "PULSECHECK_DATABASE_URL": url, "PULSECHECK_NOW": NOW.isoformat(), "COLUMNS": "100"}
    env.pop("PULSECHECK_CONFIG", None)
    env.pop("PULSECHECK_USER", None)

    def run() -> object:
        return subprocess.run([str(SCRIPT), *args], env=env, check=True, capture_output=True)

    return run


def line(what: str, took: float, floor: float, floor_name: str, goal: float | None = None) -> None:
    extra = f", beyond it {took - floor:.3f} s (goal <= {goal} s)" if goal is not None else ""
    print(f"{what:<44} {took:7.3f} s   {floor_name}: {floor:.3f} s   ratio {took / floor:5.1f}{extra}")
    # The goal is a margin over the floor, so in report's terms it is an absolute bound on the figure.
    report(what.strip(), took, "s", floor, "-" if goal is None else f"<= {floor + goal:.3f}", floor_label=floor_name,
           note="" if goal is None else f"goal: <= {goal} s beyond the cold start")


def main(n: int, keep: str | None, reuse: bool = False) -> None:
    from pulsecheck.storage.paging import PageRequest
    from pulsecheck.workflow.accounts import account_page
    from pulsecheck.workflow.escalations import EscalationFilter, escalation_page
    from pulsecheck.workflow.inbox import inbox

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "bench-lists.db"
        if reuse and path.exists():  # --reuse: the database a previous run kept with --keep
            database = Database(f"sqlite:///{path}")
            print(f"set-up: reusing {path}")
        else:
            path.unlink(missing_ok=True)
            t0 = time.perf_counter()
            database = build(path, n)
            print(f"set-up: {n:,} accounts, {3 * n:,} snapshots, {n:,} escalations in {time.perf_counter() - t0:.1f} s")
        url = f"sqlite:///{path}"
        bare = best(cli(url, "--help"))
        # The cold start of a command that reads the database: imports, settings, engine, authentication and one
        # trivial query (40 users), so that "beyond" is what the list itself costs.
        cold = best(cli(url, "users", "list", "--limit", "1"))
        sql = sqlite3.connect(path)

        def sql_accounts() -> None:
            sql.execute("SELECT a.*, s.score, s.bucket FROM accounts a LEFT JOIN score_snapshots s ON "
                        "s.account_id = a.id AND s.as_of = (SELECT max(as_of) FROM score_snapshots t WHERE "
                        "t.account_id = a.id) ORDER BY a.external_id LIMIT 50").fetchall()
            sql.execute("SELECT count(*) FROM accounts").fetchone()

        def sql_inbox() -> None:
            for query in ("SELECT count(*) FROM reviews WHERE reviewer='owner1' AND state='draft'",
                          "SELECT count(*) FROM reviews WHERE approver='owner1' AND state='submitted'",
                          "SELECT count(*) FROM escalations WHERE owner='owner1' AND status='open'",
                          "SELECT count(*) FROM mitigation_actions WHERE owner='owner1' AND due_date <= '2026-12-01'",
                          "SELECT count(*) FROM cycle_findings WHERE owner='owner1' AND status='open'"):
                sql.execute(query).fetchone()

        def sql_escalations() -> None:
            sql.execute("SELECT * FROM escalations JOIN accounts ON accounts.id = escalations.account_id WHERE "
                        "escalations.id IN (SELECT id FROM escalations ORDER BY priority, opened_at, id LIMIT 50 "
                        f"OFFSET {n // 2})").fetchall()
            sql.execute("SELECT count(*) FROM escalations").fetchone()

        def svc(fn: Callable[[Any], object]) -> Callable[[], object]:
            def run() -> object:
                with database.transaction() as session:
                    return fn(session)
            return run

        print(f"`pulsecheck --help`: {bare:.3f} s; cold start (`users list --limit 1`): {cold:.3f} s")
        line("accounts list --limit 50 (CLI)", best(cli(url, "accounts", "list", "--limit", "50")), cold,
             "cold start", GOAL)
        line("  service account_page", best(svc(lambda s: account_page(s, PageRequest(50)))), best(sql_accounts),
             "plain SQL")
        line("inbox (CLI, owner1)", best(cli(url, "--as", "owner1", "inbox")), cold, "cold start", GOAL)
        line("  service inbox", best(svc(lambda s: inbox(s, "owner1", NOW, NOW.date()))), best(sql_inbox),
             "plain SQL counts")
        middle = str(n // 2)
        line(f"escalations list --limit 50 --offset {middle}", best(cli(url, "escalations", "list", "--limit", "50",
             "--offset", middle)), cold, "cold start", GOAL)
        line("  service escalation_page",
             best(svc(lambda s: escalation_page(s, PageRequest(50, n // 2), EscalationFilter(), NOW))),
             best(sql_escalations), "plain SQL")
        line("escalations list --open --owner owner1 --limit 50", best(cli(url, "escalations", "list", "--open",
             "--owner", "owner1", "--limit", "50")), cold, "cold start", GOAL)
        sql.close()
        database.dispose()


if __name__ == "__main__":
    args = sys.argv[1:]
    keep = args[args.index("--keep") + 1] if "--keep" in args else None
    numbers = [a for a in args if a.replace("_", "").isdigit()]
    main(int(numbers[0].replace("_", "")) if numbers else 100_000, keep, "--reuse" in args)
