"""Scoring throughput: `score_portfolio` over N accounts x the 5 KPIs of examples/scoring.yaml on SQLite.

Set-up (not timed): N accounts; usage, open_tickets and on_time_delivery as readings, 10 weekly readings each;
nps and csat as survey responses, 2 of each per account (kept small so that set-up stays quick). About 2% of
the accounts have a stale usage feed, 1% a duplicate usage reading and 1% no on_time_delivery, so that the
run also opens deviations. Rows go in with SQLAlchemy Core insert(...) executemany, in chunks.
Timed: one `score_portfolio` call in one transaction (commit included).
Run: .venv/bin/python bench/score.py [N_ACCOUNTS] [--tracemalloc]   (default 100000; tracemalloc slows it down)
"""

from __future__ import annotations

import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bulk import bulk_insert
from sqlalchemy import func, select

from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Account, Deviation, KpiReading, ScoreSnapshot, SurveyResponse, User
from pulsecheck.workflow.models import approve_model
from pulsecheck.workflow.scoring import score_portfolio
from pulsecheck.workflow.users import add_user

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
MODEL = Path(__file__).resolve().parent.parent / "examples" / "scoring.yaml"
READINGS_PER_KPI = 10
SURVEYS_PER_KIND = 2


def _readings(n: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for account_id in range(1, n + 1):
        stale = account_id % 50 == 0  # newest usage reading 14 days old (max_age 7d)
        for kpi, low, high in (("usage", 20, 100), ("open_tickets", 0, 20), ("on_time_delivery", 40, 100)):
            if kpi == "on_time_delivery" and account_id % 100 == 1:
                continue  # missing input
            newest = NOW - timedelta(days=14 if stale and kpi == "usage" else 1)
            for week in range(READINGS_PER_KPI):
                yield {
                    "account_id": account_id,
                    "kpi": kpi,
                    "value": round(rng.uniform(low, high), 1),
                    "observed_at": newest - timedelta(weeks=week),
                    "source": "bench",
                    "imported_at": NOW,
                }
        if account_id % 100 == 2:  # a second usage source disagreeing at the newest time: duplicate
            yield {
                "account_id": account_id,
                "kpi": "usage",
                "value": 1.0,
                "observed_at": NOW - timedelta(days=1),
                "source": "legacy",
                "imported_at": NOW,
            }


def _surveys(n: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for account_id in range(1, n + 1):
        for kind, top in (("nps", 10.0), ("csat", 5.0)):
            for answer in range(SURVEYS_PER_KIND):
                yield {
                    "account_id": account_id,
                    "kind": kind,
                    "score": float(rng.randint(0, int(top))),
                    "max_score": top,
                    "responded_at": NOW - timedelta(days=10 + 20 * answer),
                    "imported_at": NOW,
                }


def set_up(database: Database, n: int) -> tuple[int, int]:
    """Fill the database; returns (readings, survey responses)."""
    rng = random.Random(7)
    with database.transaction() as session:
        add_user(session, "olga", ["ops"], NOW)
    with database.engine.begin() as conn:
        bulk_insert(
            conn,
            Account.__table__,
            ({"id": i, "external_id": f"A{i:06d}", "name": f"Account {i}"} for i in range(1, n + 1)),
        )
        readings = bulk_insert(conn, KpiReading.__table__, _readings(n, rng))
        surveys = bulk_insert(conn, SurveyResponse.__table__, _surveys(n, rng))
    with database.transaction() as session:
        olga = session.scalars(select(User).where(User.name == "olga")).one()
        approve_model(session, MODEL, olga, NOW)
    return readings, surveys


def main(n: int, trace: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        database = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(database.engine)
        t0 = time.perf_counter()
        readings, surveys = set_up(database, n)
        print(
            f"set-up: {n:,} accounts, {readings:,} KPI readings ({READINGS_PER_KPI} per reading KPI), "
            f"{surveys:,} survey responses ({SURVEYS_PER_KIND} nps + {SURVEYS_PER_KIND} csat per account, "
            f"kept small for set-up time) in {time.perf_counter() - t0:.1f} s (not timed)"
        )
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if trace:
            tracemalloc.start()
        start = time.perf_counter()
        with database.transaction() as session:
            run = score_portfolio(session, NOW, NOW)
            computed = time.perf_counter() - start
        elapsed = time.perf_counter() - start
        traced_peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        with database.transaction() as session:
            snapshots = session.scalar(select(func.count()).select_from(ScoreSnapshot))
            deviations = session.scalar(select(func.count()).select_from(Deviation))
        print(
            f"score_portfolio: {run.accounts:,} accounts in {elapsed:.2f} s = {run.accounts / elapsed:,.0f} "
            f"accounts/s (target <= 20 s for 100k; commit {elapsed - computed:.2f} s of it); "
            f"{run.scored:,} scored, {run.provisional:,} provisional, "
            f"buckets {dict(sorted(run.buckets.items()))}, {snapshots:,} snapshots, {deviations:,} deviations"
        )
        print(
            f"peak memory: ru_maxrss {rss_peak:,.0f} MB (was {rss_before:,.0f} MB before scoring)"
            + (f", tracemalloc peak during scoring {traced_peak:,.0f} MB" if traced_peak is not None else "")
        )
        database.dispose()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0].replace("_", "")) if args else 100_000, "--tracemalloc" in sys.argv[1:])
