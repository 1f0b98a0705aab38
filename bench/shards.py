"""Sharded evaluation throughput: the engine stage beside the plain evaluator, and `evaluate --workers 2`.

1. Engine stage in one worker process (what each worker runs per block): accounts/s of durable-rules with the
   compiled fact encoder, and with the old per-fact clean dict + json.dumps, beside the floor measured in the same
   run: the plain evaluator (rules/evaluator.py) on the same facts. Goal: within 3x of the floor.
2. The sharded run over N accounts (bench/evaluate.py's portfolio: set-up not timed) on the database given by
   --db URL (default a temporary SQLite file), with 2 local worker processes, each started as the CLI starts
   them (the commit hooks installed): the first run and the nightly re-run, accounts/s, and the peak RSS of the
   worker processes. Goals with 2 workers on PostgreSQL at 1M accounts: first run <= 120 s, nightly <= 60 s.
   `--single` also times the single-process `evaluate` on a copy of the same data (the reference).

Run: .venv/bin/python bench/shards.py [N_ACCOUNTS] [--db URL] [--engine-only] [--single]   (default 100000)
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import report
from evaluate import EXAMPLES, NOW, facts, set_up
from sqlalchemy import text

from pulsecheck.config import load_settings
from pulsecheck.rules import durable
from pulsecheck.rules.evaluator import evaluate_plain
from pulsecheck.rules.language import load_rules_file
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.workflow.evaluation import EvaluationSettings, evaluate
from pulsecheck.workflow.workers import evaluate_sharded

WORKER = """
import resource, sys
from pulsecheck.app import install_hooks
from pulsecheck.config import load_settings
from pulsecheck.storage.db import Database
from pulsecheck.workflow.evaluation import EvaluationSettings
from pulsecheck.workflow.workers import work
database = Database(sys.argv[1])
install_hooks(database, load_settings(db=sys.argv[1], env={}))
work(database, EvaluationSettings(), int(sys.argv[2]), said=lambda line: print("    worker:", line, flush=True))
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"    worker: peak RSS {rss:.0f} MB", flush=True)
"""


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f} accounts/s ({seconds:.2f} s)"


def engine_stage(n: int) -> None:
    rules = load_rules_file(EXAMPLES / "rules.yaml")
    rnd = random.Random(1)
    accounts = [(i, {**facts(rnd), "segment": "smb", "arr": 1e5, "stage": "live", "kpi.usage": 50.0}) for i in range(n)]
    t0 = time.perf_counter()
    plain = evaluate_plain(rules.rules, accounts)
    floor = time.perf_counter() - t0
    print(f"engine stage, one process: {n:,} accounts, {len(rules.rules)} rules, {len(plain):,} firings")
    print(f"  floor, plain evaluator: {_rate(n, floor)}")
    for label, fields in (("compiled encoder", durable.FactEncoder.of(rules).names), ("per-fact json.dumps", None)):
        durable.init_worker(durable.compile_rules(rules), None, fields)
        t0 = time.perf_counter()
        fired = [f for start in range(0, n, 2000) for f in durable.evaluate_chunk(accounts[start : start + 2000])]
        seconds = time.perf_counter() - t0
        assert sorted(fired) == plain, "engines disagree"
        print(f"  durable-rules, {label}: {_rate(n, seconds)}; ratio {seconds / floor:.2f}x the floor (goal <= 3x)")
        report(f"engine stage, durable-rules, {label}", n / seconds, "accounts/s", n / floor, "<= 3x", higher=True,
               floor_label="plain evaluator", note=f"{n:,} accounts, one process")


def _spawner(url: str) -> Any:
    def spawn(run_id: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", WORKER, url, str(run_id)])

    return spawn


def sharded(url: str, n: int, single: bool) -> None:
    database = Database(url)
    upgrade(database.engine)
    t0 = time.perf_counter()
    set_up(database, n)
    if database.engine.dialect.name == "postgresql":
        with database.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    print(
        f"sharded evaluate on {database.engine.dialect.name}: set-up {n:,} accounts in {time.perf_counter() - t0:.0f} s"
    )
    from pulsecheck.app import install_hooks

    install_hooks(database, load_settings(db=url, env={}))
    if single:
        for label in ("first run", "nightly"):
            start = time.perf_counter()
            run = evaluate(database, EvaluationSettings(), NOW, NOW)
            seconds = time.perf_counter() - start
            print(f"  single process {label} (reference): {_rate(n, seconds)}")
            report(f"evaluate, single process, {label}", run.accounts / seconds, "accounts/s", None, "-",
                   higher=True, note=f"{run.accounts:,} accounts on {database.engine.dialect.name} (reference)")
        return
    goals = {"first run": 120 * n / 1e6, "nightly": 60 * n / 1e6}
    for label, goal in goals.items():
        start = time.perf_counter()
        sharded_run = evaluate_sharded(database, NOW, NOW, 2, _spawner(url))
        seconds = time.perf_counter() - start
        print(
            f"  2 workers, {label}: {_rate(sharded_run.accounts, seconds)} in {sharded_run.shards} shards; "
            f"{sharded_run.firings:,} firings, {sharded_run.actions:,} actions; goal <= {goal:.1f} s at this size "
            f"({goal * 1e6 / n:.0f} s per 1M)",
            flush=True,
        )
        dialect = database.engine.dialect.name
        report(f"evaluate --workers 2, {label}, per 1M accounts", seconds * 1e6 / n, "s", None,
               f"<= {goal * 1e6 / n:.0f}", note=f"measured at {n:,} accounts on {dialect}, scaled linearly; "
               "the goal is stated for PostgreSQL")
    database.dispose()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0].replace("_", "")) if args else 100_000
    db = sys.argv[sys.argv.index("--db") + 1] if "--db" in sys.argv else None
    if db:
        args = [a for a in args if a != db]
    engine_stage(min(count, 100_000))
    if "--engine-only" not in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            sharded(db or f"sqlite:///{Path(tmp) / 'bench.db'}", count, "--single" in sys.argv)
