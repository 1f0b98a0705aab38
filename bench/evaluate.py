"""Escalation rules throughput, each figure beside a floor measured in the same run, the ratio and the goal.

1. Rules stage alone: accounts/s of durable-rules (2 worker processes, start-up included) vs the plain evaluator on
   the same generated facts (goal: within 3x).
2. The full `evaluate` over N accounts with examples/rules.yaml active, through the path the CLI takes: settings,
   `App` (its database has the commit hooks: scheduler jobs, review notices, the audit chain), the permission
   check, then the evaluation. Set-up (not timed) bulk-inserts N accounts with owners and managers, 6 weekly score
   snapshots each, issues; about 2% have a 15-point drop with open complaints, 2% three low scores, 2% a stale
   input, 3% a renewal within 90 days with a negative NPS, 1% a pile of high-severity tickets, so the first run
   opens thousands of escalations and reviews. The first run and a second run (nothing new to open: the nightly
   steady state) are timed; the clock is now (data and run alike). Floor: every SQL statement the run sent,
   recorded and replayed through the bare DBAPI connection (executemany where the run used it) into a copy of the
   database as it was before the run, in the same transactions. Goal: the first run <= 3x its replay.
   With --pg the same on PostgreSQL (127.0.0.1, user postgres, a scratch database), at N and 3N accounts, with
   the growth of the time against the growth of the portfolio (goal: linear, 3.0x).

Run: .venv/bin/python bench/evaluate.py [N_ACCOUNTS] [--engine-only | --full-only] [--pg]   (default 100000)
"""

from __future__ import annotations

import random
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bulk import copy_insert
from common import report
from sqlalchemy import create_engine, event, func, select, text

from pulsecheck.app import App, authenticated_login
from pulsecheck.config import SettingsFiles, load_settings
from pulsecheck.rules import durable
from pulsecheck.rules.evaluator import evaluate_plain
from pulsecheck.rules.language import load_rules_file
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Account, Escalation, Issue, Notification, Review, ScoreSnapshot, User
from pulsecheck.workflow.evaluation import EvaluationReport, EvaluationSettings, evaluate
from pulsecheck.workflow.models import approve_model
from pulsecheck.workflow.rulesets import activate
from pulsecheck.workflow.users import add_user

NOW = datetime.now(UTC).replace(microsecond=0)  # data and runs share this clock
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
        f"{n / t_engine:,.0f} accounts/s ({t_engine:.2f} s); floor: the plain evaluator {t_plain:.2f} s; "
        f"ratio {t_engine / t_plain:.1f}x (goal <= 3x)"
    )
    report("rules stage, durable-rules (2 workers incl. start-up)", n / t_engine, "accounts/s", n / t_plain,
           "<= 3x", higher=True, floor_label="plain evaluator")


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
        login = authenticated_login(session) or "bench"  # who runs evaluate: the OS login, or PostgreSQL's user
        add_user(session, login, ["admin"], NOW, login=login)
        add_user(session, "maria", ["manager"], NOW)
        for k in range(20):
            add_user(session, f"csm{k}", ["reviewer"], NOW, manager="maria")
        add_user(session, "olga", ["ops"], NOW)
        olga = session.scalars(select(User).where(User.name == "olga")).one()
        model_id = approve_model(session, EXAMPLES / "scoring.yaml", olga, NOW).id
        activate(session, EXAMPLES / "rules.yaml", olga, NOW)
    with database.engine.begin() as conn:
        copy_insert(conn, Account.__table__, _accounts(n, rnd))  # COPY on PostgreSQL, executemany on SQLite
        copy_insert(conn, ScoreSnapshot.__table__, _snapshots(n, rnd, model_id))
        copy_insert(conn, Issue.__table__, _issues(n))


PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
GOAL = 3.0


def _count(database: Database, model: Any) -> int:
    with database.transaction() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


class Recorder:
    """Every statement an engine sends, with its DBAPI parameters, grouped by transaction (the floor's script)."""

    def __init__(self, database: Database) -> None:
        self.engine = database.engine
        self.transactions: list[list[tuple[str, Any, bool]]] = [[]]
        self.stage_starts: list[int] = []
        self.on = False

    def statement(self, _conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, many: bool) -> None:
        if self.on:
            self.transactions[-1].append((sql, params, many))

    def commit(self, _conn: Any) -> None:
        if self.on and self.transactions[-1]:
            self.transactions.append([])

    @contextmanager
    def recording(self) -> Iterator[None]:
        event.listen(self.engine, "before_cursor_execute", self.statement)
        event.listen(self.engine, "commit", self.commit)
        self.on = True
        try:
            yield
        finally:
            self.on = False
            event.remove(self.engine, "before_cursor_execute", self.statement)
            event.remove(self.engine, "commit", self.commit)

    @property
    def statements(self) -> int:
        return sum(len(t) for t in self.transactions)

    def mark(self) -> None:
        """Start a new stage: the statements from here on are timed apart on replay."""
        if self.transactions[-1]:
            self.transactions.append([])
        self.stage_starts.append(len(self.transactions) - 1)

    def replay(self, database: Database) -> tuple[list[float], list[float]]:
        """Wall and CPU seconds (of this process) to send the recorded statements again through the bare DBAPI
        connection of `database`, in the same transactions, per stage (split where `mark` was called)."""
        raw = database.engine.raw_connection()
        seconds = [0.0] * (len(self.stage_starts) + 1)
        cpu = [0.0] * (len(self.stage_starts) + 1)
        try:
            for number, statements in enumerate(self.transactions):
                stage = sum(1 for start in self.stage_starts if number >= start)
                start, cpu_start = time.perf_counter(), time.process_time()
                cursor = raw.cursor()
                for sql, params, many in statements:
                    if many and isinstance(params, list):  # a multi-row VALUES batch comes as one parameter set
                        cursor.executemany(sql, params)
                    else:
                        cursor.execute(sql, params)
                    if cursor.description is not None:
                        cursor.fetchall()
                raw.commit()
                seconds[stage] += time.perf_counter() - start
                cpu[stage] += time.process_time() - cpu_start
            return seconds, cpu
        finally:
            raw.close()


class Store:
    """A bench database and cheap copies of it (SQLite file backup; PostgreSQL CREATE DATABASE ... TEMPLATE)."""

    def __init__(self, pg: bool, tmp: Path) -> None:
        self.pg, self.tmp, self.made = pg, tmp, []

    def url(self, name: str) -> str:
        return f"{PG_SERVER}/{name}" if self.pg else f"sqlite:///{self.tmp / name}.db"

    def new(self) -> str:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        if self.pg:
            self._admin(f"CREATE DATABASE {name}")
        self.made.append(name)
        return name

    def copy(self, source: str, database: Database) -> str:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        database.dispose()  # no open connection: a template must be idle, a SQLite copy complete
        if self.pg:
            self._admin(f"CREATE DATABASE {name} TEMPLATE {source}")
        else:
            with sqlite3.connect(self.tmp / f"{source}.db") as src, sqlite3.connect(self.tmp / f"{name}.db") as dst:
                src.backup(dst)
        self.made.append(name)
        return name

    def drop_all(self) -> None:
        for name in self.made if self.pg else ():
            self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def _admin(self, sql: str) -> None:
        server = PG_SERVER.replace("postgresql", "postgresql+psycopg")
        engine = create_engine(f"{server}/test", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(sql))
        engine.dispose()


def _cpu() -> float:
    """CPU seconds of this process and of its children that have exited (the engine's worker processes)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def cli_evaluate(app: App, progress: Any = None) -> EvaluationReport:
    """`pulsecheck evaluate` minus its printing: the command's permission check and service call."""
    with app.transaction() as session:
        app.require(session, "evaluate")
    return evaluate(app.db, EvaluationSettings.from_settings(app.settings), NOW, app.now(), progress=progress)


def timed_run(store: Store, name: str, label: str, where: str) -> tuple[float, float]:
    """One evaluate of database `name` as the CLI runs it, and the replay of its statements into a copy of the
    database taken before it; returns the run's wall time and its apply stage's."""
    before = store.copy(name, Database(store.url(name)))
    env = {"PULSECHECK_DATABASE_URL": store.url(name), "PULSECHECK_NOW": NOW.isoformat()}
    app = App(load_settings(env=env, files=SettingsFiles()), "evaluate")
    recorder = Recorder(app.db)  # the App's database: its commit hooks installed
    seen: set[str] = set()

    def progress(stage: str, _done: int, _total: int) -> None:
        if stage not in seen and stage in ("facts", "engine"):  # SQL after "facts": the run row and the apply stage
            seen.add(stage)
            if stage == "facts":
                recorder.mark()

    with recorder.recording():
        start, cpu_start = time.perf_counter(), _cpu()
        run = cli_evaluate(app, progress)
        wall, cpu = time.perf_counter() - start, _cpu() - cpu_start
    app.db.dispose()
    replica = Database(store.url(before))
    cpu_start = _cpu()
    (facts_floor, apply_floor), (_, apply_cpu_floor) = recorder.replay(replica)
    cpu_floor = _cpu() - cpu_start
    replica.dispose()
    stages = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in run.seconds.items())
    apply = run.seconds["apply"]
    print(
        f"  {label}: {run.accounts:,} accounts in {wall:.2f} s ({stages}); {len(run.firings):,} firings, "
        f"{len(run.actions):,} actions, {len(run.resolved):,} resolved; {recorder.statements:,} statements"
    )
    print(
        f"    whole run {wall:.2f} s; floor: its statements replayed through the bare DBAPI connection "
        f"{facts_floor + apply_floor:.2f} s; ratio {wall / (facts_floor + apply_floor):.1f}x (goal <= {GOAL:.0f}x; "
        f"the engine stage runs no SQL)"
    )
    print(
        f"    apply stage {apply:.2f} s; floor: its statements replayed {apply_floor:.2f} s; "
        f"ratio {apply / apply_floor:.1f}x (goal <= {GOAL:.0f}x); CPU {run.cpu['apply']:.2f} s beside the "
        f"replay's {apply_cpu_floor:.2f} s ({run.cpu['apply'] / apply_cpu_floor:.1f}x)"
    )
    note = f"{run.accounts:,} accounts, {where}"
    report(f"evaluate {label}, whole run", wall, "s", facts_floor + apply_floor, f"<= {GOAL:.0f}x",
           floor_label="its SQL replayed on bare DBAPI", note=note)
    report(f"evaluate {label}, apply stage", apply, "s", apply_floor, f"<= {GOAL:.0f}x",
           floor_label="its SQL replayed on bare DBAPI", note=note)
    # CPU seconds (this process and its engine workers) beside the replay's: the wall clock of a shared machine
    # also measures the other work on it. (On PostgreSQL the server's CPU is in neither.)
    report(f"evaluate {label}, whole run, CPU", cpu, "s", cpu_floor, "-",
           floor_label="its SQL replayed on bare DBAPI, CPU", note=note)
    report(f"evaluate {label}, apply stage, CPU", run.cpu["apply"], "s", apply_cpu_floor, "-",
           floor_label="its SQL replayed on bare DBAPI, CPU", note=note)
    return wall, apply


def full(n: int, pg: bool) -> tuple[float, float]:
    """Set up N accounts, then the first run and the nightly re-run, each beside its replay; returns the first
    run's wall time and its apply stage's."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(pg, Path(tmp))
        try:
            name = store.new()
            database = Database(store.url(name))
            upgrade(database.engine)
            t0 = time.perf_counter()
            set_up(database, n)
            print(
                f"full evaluate on {'PostgreSQL' if pg else 'SQLite'}, through the CLI's path (commit hooks "
                f"included): set-up {n:,} accounts, {WEEKS} snapshots each, {_count(database, Issue):,} issues in "
                f"{time.perf_counter() - t0:.1f} s (not timed)"
            )
            database.dispose()
            where = "PostgreSQL" if pg else "SQLite"
            first = timed_run(store, name, "first run", where)
            timed_run(store, name, "nightly re-run", where)
            database = Database(store.url(name))
            print(
                f"  after both runs: {_count(database, Escalation):,} escalations, {_count(database, Review):,} "
                f"reviews, {_count(database, Notification):,} notifications"
            )
            database.dispose()
            return first
        finally:
            store.drop_all()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0].replace("_", "")) if args else 100_000
    pg = "--pg" in sys.argv
    if "--full-only" not in sys.argv:
        engine_only(count)
    if "--engine-only" not in sys.argv:
        small, small_apply = full(count, pg)
        if pg:
            large, large_apply = full(3 * count, pg)
            print(
                f"growth on PostgreSQL, first run: {count:,} -> {3 * count:,} accounts (3.0x) took "
                f"{large / small:.1f}x the time, its apply stage {large_apply / small_apply:.1f}x (goal: linear, 3.0x)"
            )
            report("evaluate growth on PostgreSQL, first run, 3x the accounts", large / small, "x the time", None,
                   f"<= {GOAL}", note=f"{count:,} -> {3 * count:,} accounts")
            report("evaluate growth on PostgreSQL, apply stage, 3x the accounts", large_apply / small_apply,
                   "x the time", None, f"<= {GOAL}", note=f"{count:,} -> {3 * count:,} accounts")
