"""Escalation rules throughput.

1. Rules stage alone: accounts/s of durable-rules (2 worker processes, start-up included) vs the plain evaluator on
   the same generated facts (target: within 5x).
2. The full `evaluate` (facts in SQL, engine, actions in batches of 500, each its own transaction) over N accounts
   on SQLite with examples/rules.yaml active (target: <= 15 s for 100k). Set-up (not timed) bulk-inserts, as
   bench/score.py does: N accounts with owners and managers, 6 weekly score snapshots each, issues; about 2% have a
   15-point drop with open complaints, 2% three low scores, 2% a stale input, 3% a renewal within 90 days with a
   negative NPS, 1% a pile of high-severity tickets, so the first run opens a few thousand escalations and
   reviews. The first run and a second run (nothing new to open: the nightly steady state) are both timed.

Run: .venv/bin/python bench/evaluate.py [N_ACCOUNTS] [--engine-only | --full-only]   (default 100000)
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
from sqlalchemy import func, select

from pulsecheck.rules import durable
from pulsecheck.rules.evaluator import evaluate_plain
from pulsecheck.rules.language import load_rules_file
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Account, Escalation, Issue, Notification, Review, ScoreSnapshot, User
from pulsecheck.workflow.evaluation import EvaluationSettings, evaluate
from pulsecheck.workflow.models import approve_model
from pulsecheck.workflow.rulesets import activate
from pulsecheck.workflow.users import add_user

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WEEKS = 6


def facts(rnd: random.Random) -> dict[str, object]:
    return {"score": rnd.uniform(0, 100), "bucket": rnd.choice(["unhealthy", "neutral", "healthy"]),
            "score_drop_30d": rnd.uniform(0, 30), "open_complaints": rnd.randint(0, 3),
            "days_to_renewal": rnd.randint(-10, 400), "low_score_streak": rnd.randint(0, 5),
            "stale_inputs": rnd.randint(0, 1), "max_score_30d": rnd.uniform(0, 100), "kpi.nps": rnd.uniform(-100, 100),
            "open_high_tickets_60d": rnd.randint(0, 4)}  # fmt: skip


def engine_only(n: int) -> None:
    rules = load_rules_file(EXAMPLES / "rules.yaml")
    rnd = random.Random(1)
    accounts = [(i, facts(rnd)) for i in range(n)]
    t0 = time.perf_counter()
    plain = evaluate_plain(rules.rules, accounts)
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = durable.evaluate(rules, accounts, workers=2)
    t_engine = time.perf_counter() - t0
    assert engine == plain, "engines disagree"
    print(f"rules stage: {n:,} accounts, {len(rules.rules)} rules, {len(plain):,} firings (identical in both engines)")
    print(f"  plain evaluator: {n / t_plain:,.0f} accounts/s ({t_plain:.2f} s)")
    print(
        f"  durable-rules, 2 worker processes incl. start-up, {durable.ACCOUNTS_PER_SID} accounts per sid: "
        f"{n / t_engine:,.0f} accounts/s ({t_engine:.2f} s); ratio {t_engine / t_plain:.1f}x (target <= 5x)"
    )


def _kind(i: int) -> str:
    """What is wrong with account i: 1 in 50 each of drop, low, stale, tickets; 2 in 50 detractors at renewal."""
    return {0: "drop", 1: "low", 2: "stale", 3: "detractor", 4: "detractor", 5: "tickets"}.get(i % 50, "ok")


def _accounts(n: int, rnd: random.Random) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        days = 30 + rnd.randint(0, 60) if _kind(i) == "detractor" else rnd.randint(120, 700)
        yield {
            "id": i,
            "external_id": f"A{i:06d}",
            "name": f"Account {i}",
            "segment": rnd.choice(["smb", "mid"]),
            "tier": "gold",
            "arr": round(rnd.uniform(5e3, 5e5), 2),
            "owner_id": 2 + i % 20,
            "manager_id": 1,
            "renewal_date": NOW.date() + timedelta(days=days),
            "contract_start": date(2024, 1, 1),
            "stage": "live",
        }


def _snapshots(n: int, rnd: random.Random, model_id: int) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        kind, base = _kind(i), rnd.uniform(60, 95)
        for week in range(WEEKS):
            score = base + rnd.uniform(-3, 3)
            if kind == "drop" and week == 0:
                score = base - 20
            if kind == "low":
                score = rnd.uniform(10, 35)
            nps = -20.0 if kind == "detractor" else 30.0
            stale = "stale" if kind == "stale" and week == 0 else "ok"
            yield {"account_id": i, "as_of": NOW - timedelta(weeks=week), "score": round(score, 2),
                   "bucket": "unhealthy" if score < 40 else "neutral" if score < 80 else "healthy",
                   "model_id": model_id, "provisional": False,
                   "components": [{"kpi": "nps", "raw": nps, "status": "ok"},
                                  {"kpi": "usage", "raw": 50.0, "status": stale}]}  # fmt: skip


def _issues(n: int) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        kind = _kind(i)
        found = [("complaint", "medium")] * (2 if kind == "drop" else 0) + [("ticket", "high")] * (
            3 if kind == "tickets" else 0
        )
        if i % 7 == 0:
            found.append(("ticket", "low"))
        for k, (what, severity) in enumerate(found):
            yield {"external_id": f"I{i}-{k}", "account_id": i, "kind": what, "severity": severity, "status": "open",
                   "title": "bench", "opened_at": NOW - timedelta(days=10), "closed_at": None}  # fmt: skip


def set_up(database: Database, n: int) -> None:
    rnd = random.Random(7)
    with database.transaction() as session:
        add_user(session, "maria", ["manager"], NOW)
        for k in range(20):
            add_user(session, f"csm{k}", ["reviewer"], NOW, manager="maria")
        add_user(session, "olga", ["ops"], NOW)
        olga = session.scalars(select(User).where(User.name == "olga")).one()
        model_id = approve_model(session, EXAMPLES / "scoring.yaml", olga, NOW).id
        activate(session, EXAMPLES / "rules.yaml", olga, NOW)
    with database.engine.begin() as conn:
        bulk_insert(conn, Account.__table__, _accounts(n, rnd))
        bulk_insert(conn, ScoreSnapshot.__table__, _snapshots(n, rnd, model_id))
        bulk_insert(conn, Issue.__table__, _issues(n))


def _count(database: Database, model: Any) -> int:
    with database.transaction() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def full(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        database = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(database.engine)
        t0 = time.perf_counter()
        set_up(database, n)
        print(
            f"full evaluate on SQLite: set-up {n:,} accounts, {WEEKS} snapshots each, "
            f"{_count(database, Issue):,} issues in {time.perf_counter() - t0:.1f} s (not timed)"
        )
        for label in ("first run", "second run"):
            start = time.perf_counter()
            report = evaluate(database, EvaluationSettings(), NOW, NOW)
            wall = time.perf_counter() - start
            stages = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in report.seconds.items())
            print(
                f"  {label}: {report.accounts:,} accounts in {wall:.2f} s = {report.accounts / wall:,.0f} accounts/s "
                f"(target <= 15 s for 100k); {stages}; {len(report.firings):,} firings, "
                f"{len(report.actions):,} actions, {len(report.resolved):,} resolved"
            )
        print(
            f"  after both runs: {_count(database, Escalation):,} escalations, {_count(database, Review):,} reviews, "
            f"{_count(database, Notification):,} notifications"
        )
        database.dispose()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0].replace("_", "")) if args else 100_000
    if "--full-only" not in sys.argv:
        engine_only(count)
    if "--engine-only" not in sys.argv:
        full(count)
