"""Sharded evaluation throughput: the engine stage beside the plain evaluator, and `evaluate --workers 2`.

1. Engine stage in one worker process (what each worker runs per block): accounts/s of durable-rules with the
   compiled fact encoder, and with the old per-fact clean dict + json.dumps, beside the floor measured in the same
   run: the plain evaluator (rules/evaluator.py) on the same facts. Goal: within 3x of the floor.
2. The sharded run over N accounts (bench/evaluate.py's portfolio: set-up not timed) on the database given by
   --db URL (default a temporary SQLite file), with 2 local worker processes, each started as the CLI starts
   them (the commit hooks installed): the first run and the nightly re-run, accounts/s, and the peak RSS of the
   worker processes. Goals with 2 workers on PostgreSQL at 1M accounts: first run <= 120 s, nightly <= 60 s.
   `--single` also times the single-process `evaluate` on a copy of the same data (the reference).

With a PostgreSQL --db the set-up stays in that database (an empty one is set up, one holding the same set-up
is reused) and the runs work on a copy, `<name>_run`, dropped at the end; `--setup-only` stops after the set-up.
CPU seconds are given beside the wall time: the worker processes', the run's own process's, and those of the
PostgreSQL backends serving each (read from /proc: the server must run on this host to count them).

Run: .venv/bin/python bench/shards.py [N_ACCOUNTS] [--db URL] [--engine-only | --sharded-only | --setup-only] [--single]
     (default 100000)
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from backends import BackendCpu
from common import report
from evaluate import EXAMPLES, NOW, facts, set_up
from sqlalchemy import create_engine, func, make_url, select, text

from pulsecheck.config import load_settings
from pulsecheck.rules import durable
from pulsecheck.rules.evaluator import evaluate_plain
from pulsecheck.rules.language import load_rules_file
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Account, EvaluationRun
from pulsecheck.workflow.evaluation import EvaluationSettings, evaluate
from pulsecheck.workflow.shards import BLOCK
from pulsecheck.workflow.workers import evaluate_sharded

BENCH = Path(__file__).resolve().parent

WORKER = """
import json, resource, sys
from backends import BackendCpu
from pulsecheck.app import install_hooks
from pulsecheck.config import load_settings
from pulsecheck.storage.db import Database
from pulsecheck.workflow.evaluation import EvaluationSettings
from pulsecheck.workflow.workers import work
database = Database(sys.argv[1])
server = BackendCpu(database.engine)
install_hooks(database, load_settings(db=sys.argv[1], env={}))
work(database, EvaluationSettings(), int(sys.argv[2]), said=lambda line: print("    worker:", line, flush=True))
database.dispose()
me = resource.getrusage(resource.RUSAGE_SELF)  # its ru_maxrss starts from the parent's: VmHWM is this process's
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
figures = {"rss_mb": peak / 1024, "cpu": me.ru_utime + me.ru_stime, "server_cpu": server.seconds()}
with open(sys.argv[3], "a") as out:
    out.write(json.dumps(figures) + "\\n")
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


def _spawner(url: str, results: Path) -> Any:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")]))}

    def spawn(run_id: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", WORKER, url, str(run_id), str(results)], env=env)

    return spawn


def _admin(url: str, sql: str) -> None:
    engine = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


def seed(url: str, n: int) -> None:
    """Set up N accounts in the database at `url` unless it holds them already (an earlier run's set-up, kept:
    the timed runs work on a copy). Refuses a database holding something else."""
    database = Database(url)
    upgrade(database.engine)
    with database.engine.connect() as conn:
        accounts = conn.scalar(select(func.count()).select_from(Account)) or 0
        runs = conn.scalar(select(func.count()).select_from(EvaluationRun)) or 0
    if accounts == 0 and runs == 0:
        t0 = time.perf_counter()
        set_up(database, n)
        if database.engine.dialect.name == "postgresql":
            with database.engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        print(f"set-up of {n:,} accounts in {time.perf_counter() - t0:.0f} s (not timed)", flush=True)
    elif accounts != n or runs:
        database.dispose()
        sys.exit(f"error: {make_url(url).render_as_string()} holds {accounts:,} accounts and {runs} runs, not a "
                 f"set-up of {n:,}: give an empty database")
    else:
        print(f"set-up of {n:,} accounts found in the database (kept from an earlier run)", flush=True)
    database.dispose()


def _uptime() -> str:
    with open("/proc/loadavg") as loadavg:
        return "load average " + ", ".join(loadavg.read().split()[:3])


def sharded(seed_url: str, n: int, single: bool) -> None:
    seed(seed_url, n)
    url = seed_url
    postgres = make_url(seed_url).get_backend_name() == "postgresql"
    if postgres:  # the runs work on a copy: the set-up stays for the next bench run
        name = f"{make_url(seed_url).database}_run"
        _admin(seed_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _admin(seed_url, f"CREATE DATABASE {name} TEMPLATE {make_url(seed_url).database}")
        url = make_url(seed_url).set(database=name).render_as_string(hide_password=False)
    try:
        _runs(url, n, single)
    finally:
        if postgres:
            _admin(seed_url, f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")


def _runs(url: str, n: int, single: bool) -> None:
    database = Database(url)
    server = BackendCpu(database.engine)
    dialect = database.engine.dialect.name
    print(f"sharded evaluate on {dialect}, {n:,} accounts", flush=True)
    from pulsecheck.app import install_hooks

    install_hooks(database, load_settings(db=url, env={}))
    if single:
        for label in ("first run", "nightly"):
            start, cpu, served = time.perf_counter(), _cpu(), server.seconds()
            run = evaluate(database, EvaluationSettings(), NOW, NOW)
            seconds = time.perf_counter() - start
            print(f"  single process {label} (reference): {_rate(n, seconds)}; CPU {_cpu() - cpu:.1f} s, server "
                  f"CPU {server.seconds() - served:.1f} s; {_uptime()}")
            report(f"evaluate, single process, {label}", run.accounts / seconds, "accounts/s", None, "-",
                   higher=True, note=f"{run.accounts:,} accounts on {dialect} (reference)")
        database.dispose()
        return
    goals = {"first run": 120 * n / 1e6, "nightly": 60 * n / 1e6}
    with tempfile.TemporaryDirectory() as tmp:
        for label, goal in goals.items():
            results = Path(tmp) / f"{label}.jsonl"
            results.touch()
            start, cpu, served = time.perf_counter(), _cpu(), server.seconds()
            sharded_run = evaluate_sharded(database, NOW, NOW, 2, _spawner(url, results))
            seconds = time.perf_counter() - start
            lead_cpu, lead_server = _cpu() - cpu, server.seconds() - served
            workers = [json.loads(line) for line in results.read_text().splitlines()]
            worker_cpu = sum(w["cpu"] for w in workers)
            worker_server = sum(w["server_cpu"] for w in workers)
            rss = ", ".join(f"{w['rss_mb']:.0f}" for w in workers)
            print(
                f"  2 workers, {label}: {_rate(sharded_run.accounts, seconds)} in {sharded_run.shards} shards; "
                f"{sharded_run.firings:,} firings, {sharded_run.actions:,} actions; goal <= {goal:.1f} s at this "
                f"size ({goal * 1e6 / n:.0f} s per 1M)\n"
                f"    CPU: {len(workers)} worker processes {worker_cpu:.1f} s, their PostgreSQL backends "
                f"{worker_server:.1f} s; the run's own process {lead_cpu:.1f} s, its backends {lead_server:.1f} s; "
                f"total {worker_cpu + worker_server + lead_cpu + lead_server:.1f} s CPU in {seconds:.1f} s wall "
                f"on 2 cores; peak RSS per worker {rss} MB; {_uptime()}",
                flush=True,
            )
            note = f"measured at {n:,} accounts on {dialect}, scaled linearly; the goal is stated for PostgreSQL"
            report(f"evaluate --workers 2, {label}, per 1M accounts", seconds * 1e6 / n, "s", None,
                   f"<= {goal * 1e6 / n:.0f}", note=note)
            total = worker_cpu + worker_server + lead_cpu + lead_server
            report(f"evaluate --workers 2, {label}, CPU (client and server) per 1M accounts", total * 1e6 / n,
                   "s", None, f"<= {2 * goal * 1e6 / n:.0f}", note=note + "; 2 cores busy for the goal's wall time")
            report(f"evaluate --workers 2, {label}, peak RSS per worker", max(w["rss_mb"] for w in workers), "MB",
                   None, "-", note=f"{n:,} accounts on {dialect}; facts held one block of {BLOCK:,} at a time")
    database.dispose()


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0].replace("_", "")) if args else 100_000
    db = sys.argv[sys.argv.index("--db") + 1] if "--db" in sys.argv else None
    if db:
        args = [a for a in args if a != db]
    if "--setup-only" in sys.argv and db:
        seed(db, count)
        sys.exit(0)
    if "--sharded-only" not in sys.argv:
        engine_stage(min(count, 100_000))
    if "--engine-only" not in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            sharded(db or f"sqlite:///{Path(tmp) / 'bench.db'}", count, "--single" in sys.argv)
