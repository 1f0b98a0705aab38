"""Portfolio report over a large portfolio: `report portfolio --html` on N accounts x 12 monthly snapshots, SQLite.

Set-up (not timed, `build_portfolio`): 40 owners, N accounts over 4 segments with ARR and renewal dates, the
example model approved, 12 monthly score snapshots per account (the shape `score_portfolio` writes, components
included) drifting so that some accounts decline, about 1% of accounts with an open escalation, 0.5% with an
open review (a third of them overdue), 2% with an open deviation. Rows go in with SQLAlchemy Core
insert(...) executemany, in chunks, as bench/score.py does.
Timed: the service calls behind `report portfolio --html FILE` (build with the scorecards of the 100 most urgent
at-risk accounts, render, write), queries included.
The clock is fixed for both the data and the run. Floor: the same SQL statements replayed with sqlite3 on a copy
of the file (bench/common.py), same run.
Run: .venv/bin/python bench/report.py [N_ACCOUNTS] [--keep DIR]   (default 100000; goal <= 10 s)
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bulk import bulk_insert
from common import captured, replay_seconds, report, snapshot
from sqlalchemy import select

from pulsecheck.scoring.schema import load_model_file
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Account, Deviation, Escalation, Review, ScoreSnapshot, User
from pulsecheck.workflow.models import approve_model
from pulsecheck.workflow.users import add_user

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
MODEL = Path(__file__).resolve().parent.parent / "examples" / "scoring.yaml"
MONTHS = 12
OWNERS = 40
SEGMENTS = ("enterprise", "mid-market", "smb", "public")
KPIS = (("usage", 30.0), ("nps", 20.0), ("csat", 20.0), ("open_tickets", 15.0), ("on_time_delivery", 15.0))


def _accounts(n: int, rng: random.Random, owners: list[int]) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        yield {
            "id": i,
            "external_id": f"A{i:06d}",
            "name": f"Account {i}",
            "segment": SEGMENTS[i % len(SEGMENTS)],
            "tier": "gold" if i % 10 == 0 else "standard",
            "arr": float(rng.randrange(5_000, 400_000, 1_000)),
            "owner_id": None if i % 97 == 0 else owners[i % len(owners)],
            "manager_id": owners[0],
            "renewal_date": NOW.date() + timedelta(days=rng.randrange(-30, 400)),
            "contract_start": date(2024, 1, 1) + timedelta(days=i % 600),
        }


def _components(score: float, when: datetime) -> list[dict[str, Any]]:
    return [
        {
            "kpi": kpi,
            "raw": round(score, 1),
            "normalized": round(score, 1),
            "weight": weight,
            "effective_weight": weight,
            "contribution": round(score * weight / 100, 2),
            "status": "ok",
            "observed_at": (when - timedelta(days=1)).isoformat(),
        }
        for kpi, weight in KPIS
    ]


def _bucket(score: float) -> str:
    return "unhealthy" if score < 40 else "neutral" if score < 80 else "healthy"


def _snapshots(n: int, rng: random.Random, model_id: int) -> Iterator[dict[str, Any]]:
    for account_id in range(1, n + 1):
        score = rng.uniform(25, 98)
        drift = rng.uniform(-2, 1.5)
        for month in range(MONTHS - 1, -1, -1):
            when = NOW - timedelta(days=30 * month)
            score = min(100.0, max(0.0, score + drift + rng.uniform(-4, 4)))
            yield {
                "account_id": account_id,
                "as_of": when,
                "score": round(score, 2),
                "bucket": _bucket(score),
                "model_id": model_id,
                "components": _components(score, when),
                "provisional": False,
            }


def _escalations(n: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for account_id in range(7, n + 1, 100):
        opened = NOW - timedelta(days=rng.randrange(0, 120))
        yield {
            "account_id": account_id,
            "rule_id": "drop-with-complaints",
            "severity": "high",
            "priority": rng.choice(("P1", "P2", "P2", "P3")),
            "reason": "score drop with open complaints",
            "owner": "owner1",
            "level": 0,
            "opened_at": opened,
            "status": "acknowledged" if account_id % 300 == 7 else "open",
            "dedupe_key": f"{account_id}:drop-with-complaints",
        }


def _reviews(n: int) -> Iterator[dict[str, Any]]:
    for account_id in range(11, n + 1, 200):
        due = NOW + timedelta(days=(account_id % 3 - 1) * 10)  # a third overdue
        yield {
            "account_id": account_id,
            "state": "draft",
            "kind": "cadence",
            "reviewer": "owner1",
            "priority": "P3",
            "due_at": due,
            "created_at": due - timedelta(days=14),
            "updated_at": due - timedelta(days=14),
            "version_id": 1,
        }


def _deviations(n: int) -> Iterator[dict[str, Any]]:
    for account_id in range(3, n + 1, 50):
        kind = ("stale", "missing", "duplicate")[account_id % 3]
        yield {
            "account_id": account_id,
            "kind": kind,
            "subject": "usage",
            "detail": f"usage input {kind}",
            "found_at": NOW - timedelta(days=2),
            "last_seen_at": NOW,
            "status": "accepted" if account_id % 7 == 0 else "open",
        }


def build_portfolio(path: str | Path, accounts: int) -> Database:
    """A migrated SQLite database at `path` holding a portfolio of `accounts` accounts with 12 months of history."""
    database = Database(f"sqlite:///{path}")
    upgrade(database.engine)
    rng = random.Random(11)
    with database.transaction() as session:
        add_user(session, "olga", ["ops", "manager"], NOW)
        for i in range(1, OWNERS + 1):
            add_user(session, f"owner{i}", ["reviewer"], NOW, manager="olga")
        session.flush()
        owners = list(session.scalars(select(User.id).where(User.name != "olga").order_by(User.id)))
        olga = session.scalars(select(User).where(User.name == "olga")).one()
        model_id = approve_model(session, MODEL, olga, NOW - timedelta(days=400)).id
    load_model_file(MODEL)  # fail early on a broken example
    with database.engine.begin() as conn:
        bulk_insert(conn, Account.__table__, _accounts(accounts, rng, owners))
        bulk_insert(conn, ScoreSnapshot.__table__, _snapshots(accounts, rng, model_id))
        bulk_insert(conn, Escalation.__table__, _escalations(accounts, rng))
        bulk_insert(conn, Review.__table__, _reviews(accounts))
        bulk_insert(conn, Deviation.__table__, _deviations(accounts))
    return database


def time_report(database: Database, out: Path) -> tuple[float, float]:
    """Seconds (wall, then this process's CPU) taken by the service behind `report portfolio --html FILE`."""
    from pulsecheck.reports.files import write_atomic
    from pulsecheck.reports.portfolio import render_html
    from pulsecheck.rules.priority import PriorityMatrix
    from pulsecheck.workflow.portfolio import SCORECARD_PAGES, build_portfolio

    start, cpu = time.perf_counter(), time.process_time()
    with database.transaction() as session:  # as the command does for --html: the at-risk scorecards included
        data = build_portfolio(session, NOW, PriorityMatrix(), None, SCORECARD_PAGES)
    write_atomic(render_html(data, NOW), out, "--html")
    return time.perf_counter() - start, time.process_time() - cpu


def main(n: int, keep: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        database = build_portfolio(folder / "bench-report.db", n)
        print(
            f"set-up: {n:,} accounts x {MONTHS} monthly snapshots = {n * MONTHS:,} snapshots "
            f"in {time.perf_counter() - t0:.1f} s (not timed)"
        )
        out = folder / "portfolio.html"
        copy = snapshot(folder / "bench-report.db")
        with captured(database.engine) as statements:
            elapsed, cpu = time_report(database, out)
        print(f"report portfolio --html: {out.stat().st_size / 1024:,.0f} KiB HTML")
        report(f"report portfolio --html ({n:,} accounts)", elapsed, "s", replay_seconds(copy, statements), "<= 10",
               floor_label=f"its {len(statements)} SQL statements replayed in sqlite3",
               note=f"CPU {cpu:.2f} s (wall is noisy under load)")
        database.dispose()


if __name__ == "__main__":
    args = sys.argv[1:]
    keep = args[args.index("--keep") + 1] if "--keep" in args else None
    numbers = [a for a in args if a.replace("_", "").isdigit()]
    main(int(numbers[0].replace("_", "")) if numbers else 100_000, keep)
