"""Scoring throughput and memory (issues 14 and 17): `score_portfolio` over N accounts on SQLite, on the same
data with four models, so that each comparison changes one thing:
- flat: examples/scoring.yaml as shipped (5 scored KPIs and the tracked logins KPI): issue 17's figure;
- grouped: the same 6 KPIs in groups, with concern/strength thresholds and status colours: what groups and
  statuses cost on their own;
- flat 8: the scorecard's 8 KPIs without groups, thresholds or statuses, npv and ltv read as plain readings:
  what 8 KPIs cost without the scorecard's machinery;
- scorecard: those 8 KPIs in groups with thresholds and status colours, npv and ltv derived from the accounts'
  cash flows and financials (the examples' scorecard.yaml in shape): scorecard / flat 8 is issue 14's
  "groups, statuses and derived KPIs vs without" on the same KPIs; scorecard / flat is printed too (that
  ratio also carries the cost of 2 more KPIs).

Set-up (not timed): N accounts; usage, open_tickets and on_time_delivery as readings, 10 weekly readings each;
nps and csat as survey responses, 2 of each per account (kept small so that set-up stays quick); one logins,
one npv and one ltv reading, 4 cash flows and one financials row per account. About 2% of the accounts have a
stale usage feed, 1% a duplicate usage reading and 1% no on_time_delivery, so that the run also opens
deviations.
Timed: one `score_portfolio` call in one transaction (commit included), wall and CPU time, for each model
ROUNDS (3) times, interleaved (flat, grouped, flat 8, scorecard, flat, ...); each model's figure is the median of
its runs, and the ratios are ratios of medians. Run once each, in a fixed order, a model's figure carried the
machine's load at its moment and whatever the run before it left behind (one run of a model read 2.26 s, the
same model later 1.57 s; grouped / flat read 0.96x in one bench and 1.74x in the next). One untimed run of the
flat model first warms the caches (the first run over a fresh file paid for reading it into memory). Every run
starts from the same state (`clear`, not timed): the previous run's snapshots and deviations deleted (and with
them latest_snapshots' rows, by its delete trigger), so every run writes the same rows; the WAL checkpointed and
truncated, as a `pulsecheck score` process finds it (SQLite checkpoints and removes the WAL when the last
connection closes); the floor's tables dropped after each measure. Measured at 20k and 100k accounts, none of
what a run leaves behind moved the next one beyond the machine's noise (identical runs vary by up to 30% here,
CPU time too): not the WAL (left grown, or truncated), not the free pages, not latest_snapshots (empty at every
start), not the planner's statistics (neither score nor the bench runs ANALYZE: there are none). The
order-dependence was the load of other processes at each run's moment; the interleaved rounds spread it over every
model.
Floors, each measured ROUNDS times and its median reported, after one more flat run with its SQL captured (not
one of the timed runs: capturing costs): its SQL statements replayed with sqlite3 on a copy of the data it met
(what the reads and writes cost without Python around them); and its snapshot rows as stored, inserted again with
the DB-API's executemany (5,000 at a time) into a table of the same shape and indexes whose inserts keep a copy of
latest_snapshots by a copy of migration 0021's trigger, plus the commit: what writing the result costs at least.
The same insert without the trigger is printed beside it: the difference is what the trigger costs per snapshot
(on SQLite most of it is the row trigger's call: one whose body does nothing costs about as much). `score`
itself sets that trigger aside within its transaction and keeps latest_snapshots by one statement per chunk
(workflow/snapshot_rows.py), so on SQLite the insert without the trigger is the nearer floor. The floor's tables
are dropped after each measure.
CPU times are printed and reported beside wall times: on a shared machine the wall time mostly waits for other
processes.
Goals: <= 10 s and <= 300 MB peak (ru_maxrss, the whole process) for 100k accounts; grouped and scorecard
<= 1.3x their flat counterpart.
Run: .venv/bin/python bench/score.py [N_ACCOUNTS] [--rounds=N]   (defaults 100000 and 3)
"""

from __future__ import annotations

import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bulk import bulk_insert
from common import captured, replay_seconds, report, snapshot
from sqlalchemy import delete, func, select

from pulsecheck.storage.db import SQLITE_PRAGMAS, Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import (
    Account,
    AccountFinancials,
    Cashflow,
    Deviation,
    KpiReading,
    ScoreSnapshot,
    SurveyResponse,
    User,
)
from pulsecheck.workflow.models import approve_model, approved_row, read_model_file
from pulsecheck.workflow.scoring import score_portfolio
from pulsecheck.workflow.users import add_user

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
MODEL = Path(__file__).resolve().parent.parent / "examples" / "scoring.yaml"
GROUPED_SAME = """\
version: "bench-grouped-same"
groups:
  - {name: customer_value, label: "Customer success", groups: [business_value, experience_value]}
  - {name: internal_success, label: "Internal business success"}
kpis:
  - {name: usage, group: business_value, weight: 30, scale: {min: 0, max: 100}, max_age: 7d, concern: {below: 30}}
  - {name: nps, group: experience_value, weight: 20, scale: {min: -100, max: 100}, from_surveys: nps, max_age: 90d,
     concern: {below: 0}, strength: {at_least: 30}}
  - {name: csat, group: experience_value, weight: 20, from_surveys: csat, max_age: 90d}
  - {name: open_tickets, group: internal_success, weight: 15, scale: {min: 20, max: 0}}
  - {name: on_time_delivery, group: internal_success, weight: 15, scale: {min: 0, max: 100}, concern: {below: 80}}
  - {name: logins, weight: 0, concern: {below: 10}}
buckets:
  - {name: unhealthy, below: 40, color: orange}
  - {name: neutral, below: 80, color: yellow}
  - {name: healthy, color: blue}
statuses: {concern: orange, strength: green}
"""
FLAT_EIGHT = """\
version: "bench-flat-8"
kpis:
  - {name: npv, weight: 10, scale: {min: 0, max: 2000}}
  - {name: usage, weight: 20, scale: {min: 0, max: 100}, max_age: 7d}
  - {name: nps, weight: 15, from_surveys: nps, max_age: 90d}
  - {name: csat, weight: 15, from_surveys: csat, max_age: 90d}
  - {name: open_tickets, weight: 15, scale: {min: 20, max: 0}}
  - {name: on_time_delivery, weight: 15, scale: {min: 0, max: 100}}
  - {name: ltv, weight: 10, scale: {min: 0, max: 50000}}
  - {name: logins, weight: 0}
buckets:
  - {name: unhealthy, below: 40, color: orange}
  - {name: neutral, below: 80, color: yellow}
  - {name: healthy, color: blue}
"""
GROUPED = """\
version: "bench-grouped"
groups:
  - {name: customer_value, label: "Customer success", groups: [business_value, experience_value, performance_value]}
  - {name: internal_success, label: "Internal business success"}
kpis:
  - {name: npv, group: business_value, weight: 10, formula: npv, scale: {min: 0, max: 2000}}
  - {name: usage, group: business_value, weight: 20, scale: {min: 0, max: 100}, max_age: 7d, concern: {below: 30}}
  - {name: nps, group: experience_value, weight: 15, from_surveys: nps, max_age: 90d, concern: {below: 0},
     strength: {at_least: 30}}
  - {name: csat, group: experience_value, weight: 15, from_surveys: csat, max_age: 90d}
  - {name: open_tickets, group: performance_value, weight: 15, scale: {min: 20, max: 0}}
  - {name: on_time_delivery, group: performance_value, weight: 15, scale: {min: 0, max: 100}, concern: {below: 80}}
  - {name: ltv, group: internal_success, weight: 10, formula: ltv, scale: {min: 0, max: 50000}}
  - {name: logins, weight: 0, concern: {below: 10}}
buckets:
  - {name: unhealthy, below: 40, color: orange}
  - {name: neutral, below: 80, color: yellow}
  - {name: healthy, color: blue}
statuses: {concern: orange, strength: green}
discount_rate: 0.08
"""
READINGS_PER_KPI = 10
SURVEYS_PER_KIND = 2
START = [date(2023, month, 1) for month in range(1, 13)]


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


def _single_readings(n: int) -> Iterator[dict[str, Any]]:
    """One logins reading per account, and one npv and one ltv reading: the flat 8-KPI model's plain inputs."""
    for account_id in range(1, n + 1):
        for kpi, value in (("logins", float(account_id % 40)), ("npv", 300.0 + account_id % 1500),
                           ("ltv", 20000.0 + account_id % 30000)):  # fmt: skip
            yield {"account_id": account_id, "kpi": kpi, "value": value, "observed_at": NOW - timedelta(days=1),
                   "source": "app", "imported_at": NOW}  # fmt: skip


def _cashflows(n: int) -> Iterator[dict[str, Any]]:
    for account_id in range(1, n + 1):
        for period, amount in enumerate((-1000.0, 400.0, 450.0, 500.0 + account_id % 300)):
            yield {"account_id": account_id, "period": period, "amount": amount}


def _financials(n: int) -> Iterator[dict[str, Any]]:
    for account_id in range(1, n + 1):
        tenure = None if account_id % 3 else 36.0  # two in three take the months since contract_start
        yield {"account_id": account_id, "arpu": 1000.0 + account_id % 500, "cac": 5000.0, "cost_to_serve": 300.0,
               "expected_tenure_months": tenure, "discount_rate": None}  # fmt: skip


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
            (
                {"id": i, "external_id": f"A{i:06d}", "name": f"Account {i}", "contract_start": START[i % 12]}
                for i in range(1, n + 1)
            ),
        )
        readings = bulk_insert(conn, KpiReading.__table__, _readings(n, rng))
        readings += bulk_insert(conn, KpiReading.__table__, _single_readings(n))
        surveys = bulk_insert(conn, SurveyResponse.__table__, _surveys(n, rng))
        bulk_insert(conn, Cashflow.__table__, _cashflows(n))
        bulk_insert(conn, AccountFinancials.__table__, _financials(n))
    return readings, surveys


MODELS = (  # name, model text (None: examples/scoring.yaml as shipped), label
    ("flat", None, "score, flat model (examples/scoring.yaml: 5 scored KPIs + tracked logins)"),
    ("grouped", GROUPED_SAME, "score, grouped: the same 6 KPIs in groups with thresholds and status colours"),
    ("flat8", FLAT_EIGHT, "score, flat 8: the scorecard's 8 KPIs, no groups/statuses, npv and ltv as readings"),
    ("scorecard", GROUPED, "score, scorecard: 8 KPIs in groups with statuses, npv and ltv derived from cash flows "
     "and financials"),
)  # fmt: skip
ROUNDS = 3  # each model's runs, interleaved: flat, grouped, flat 8, scorecard, flat, grouped, ...


def approve(database: Database, path: Path) -> None:
    """`path` the approved model (a no-op when it already is: approving the same content again is refused)."""
    with database.transaction() as session:
        current = approved_row(session)
        if current is not None and current.sha256 == read_model_file(path)[1].digest():
            return
        olga = session.scalars(select(User).where(User.name == "olga")).one()
        approve_model(session, path, olga, NOW)


def clear(database: Database) -> None:
    """Every run's starting state, the same (not timed): the previous run's snapshots and deviations deleted
    (latest_snapshots empties with them, by its delete trigger), so every run writes the same rows; and the WAL
    checkpointed and truncated to nothing, as a `pulsecheck score` process meets it (SQLite's last connection
    checkpoints and removes the WAL when it closes), rather than grown to the previous run's size."""
    with database.transaction() as session:
        session.execute(delete(ScoreSnapshot))
        session.execute(delete(Deviation))
    checkpoint(database)


def checkpoint(database: Database) -> None:
    """The WAL checkpointed and truncated (no reader is open: the pool's one connection is idle)."""
    with database.engine.connect() as conn:
        busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    if busy:
        raise RuntimeError("the WAL checkpoint was blocked: a connection is still reading")


def timed_score(database: Database, label: str) -> tuple[float, float]:
    """One score_portfolio run in its transaction; prints and returns its wall and CPU seconds."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, cpu = time.perf_counter(), time.process_time()
    with database.transaction() as session:
        run = score_portfolio(session, NOW, NOW)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with database.transaction() as session:
        deviations = session.scalar(select(func.count()).select_from(Deviation))
    print(
        f"{label}: {run.accounts:,} accounts in {elapsed:.2f} s (CPU {cpu:.2f} s) = {run.accounts / elapsed:,.0f} "
        f"accounts/s; {run.scored:,} scored, {run.provisional:,} provisional, buckets "
        f"{dict(sorted(run.buckets.items()))}, {deviations:,} deviations; peak ru_maxrss {rss_peak:,.0f} MB (was "
        f"{rss_before:,.0f} MB before)",
        flush=True,
    )
    return elapsed, cpu


def median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The median wall time and the median CPU time of `runs` (each taken on its own)."""
    return statistics.median(wall for wall, _ in runs), statistics.median(cpu for _, cpu in runs)


def spread(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


FLOOR_INDEXES = (  # score_snapshots' own: its unique key, the as_of index and the covering "latest" index (0020)
    "CREATE UNIQUE INDEX {t}_uq ON {t} (account_id, as_of)",
    "CREATE INDEX {t}_as_of ON {t} (as_of)",
    "CREATE INDEX {t}_latest ON {t} (account_id, as_of, bucket, score)",
)
FLOOR_TABLES = ("floor_latest", "floor_kept", "floor_plain")


def floor(path: Path) -> tuple[float, float, float]:
    """Wall and CPU seconds to insert the stored snapshot rows again with plain executemany (5,000 at a time) into
    a table of the same shape and indexes whose inserts keep a copy of latest_snapshots by a copy of migration
    0021's insert trigger (as score_snapshots' do), plus the commit; and the CPU seconds of the same without the
    trigger (what the trigger costs is the difference). Its tables are dropped after and the WAL truncated before
    and after, so that every measure (and every run after it) starts from the same state."""
    conn = sqlite3.connect(path)
    for pragma in SQLITE_PRAGMAS:  # as the application's connections
        conn.execute(pragma)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    trigger = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'latest_snapshots_insert'").fetchone()[0]
    conn.execute("CREATE TABLE floor_latest AS SELECT * FROM latest_snapshots WHERE 0")
    conn.execute("CREATE UNIQUE INDEX floor_latest_pk ON floor_latest (account_id)")
    for table in ("floor_kept", "floor_plain"):
        conn.execute(f"CREATE TABLE {table} AS SELECT * FROM score_snapshots WHERE 0")
        for index in FLOOR_INDEXES:
            conn.execute(index.format(t=table))
    kept = trigger.replace("latest_snapshots_insert", "floor_latest_insert")
    kept = kept.replace("ON score_snapshots", "ON floor_kept")
    conn.execute(kept.replace("latest_snapshots", "floor_latest"))
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    columns = "account_id, as_of, score, bucket, model_id, components, provisional, groups"
    figures = []
    for table in ("floor_kept", "floor_plain"):
        insert = f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * 8)})"
        reader = conn.cursor().execute(f"SELECT {columns} FROM score_snapshots ORDER BY id")
        spent = cpu = 0.0
        while rows := reader.fetchmany(5000):
            start, started = time.perf_counter(), time.process_time()
            conn.executemany(insert, rows)
            spent, cpu = spent + time.perf_counter() - start, cpu + time.process_time() - started
        start, started = time.perf_counter(), time.process_time()
        conn.commit()
        figures.append((spent + time.perf_counter() - start, cpu + time.process_time() - started))
    for table in FLOOR_TABLES:
        conn.execute(f"DROP TABLE {table}")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    (spent, cpu), (_, plain_cpu) = figures
    return spent, cpu, plain_cpu


def floors(database: Database, path: Path, n: int, flat: tuple[float, float]) -> None:
    """The floors, each measured ROUNDS times and its median reported: the flat model scored once more with its SQL
    statements captured (not one of its timed runs: capturing costs), then its snapshot rows inserted again with
    executemany, and its SQL statements replayed in sqlite3 on copies of the data they met. Last, after the memory
    figure: the captured rows are the whole run's."""
    approve(database, MODEL)
    clear(database)
    before = snapshot(path)
    with captured(database.engine) as statements:
        timed_score(database, "score, flat model again (its SQL captured for the floors; not one of the timed runs)")
    written = [floor(path) for _ in range(ROUNDS)]
    flat_floor, floor_cpu = median([(wall, cpu) for wall, cpu, _ in written])
    plain_cpu = statistics.median(plain for _, _, plain in written)
    print(
        f"  floor (executemany of the same {n:,} snapshot rows + commit, into the same indexes, the "
        f"latest_snapshots trigger kept), median of {ROUNDS}: {flat_floor:.2f} s (runs "
        f"{spread([w[0] for w in written])}; CPU {floor_cpu:.2f} s; without the trigger CPU {plain_cpu:.2f} s: "
        "the trigger costs "
        f"{(floor_cpu - plain_cpu) / n * 1e6:.1f} us per snapshot); the flat model's median / floor: "
        f"{flat[0] / flat_floor:.1f}x wall, {flat[1] / max(floor_cpu, 1e-6):.1f}x CPU"
    )
    report("score, flat model, per 100k accounts", flat[0] * 100_000 / n, "s", flat_floor * 100_000 / n,
           "<= 10", floor_label="executemany of its snapshot rows, trigger kept",
           note=f"median of {ROUNDS} runs at {n:,} accounts, scaled linearly")  # fmt: skip
    report("score, flat model, CPU per 100k accounts", flat[1] * 100_000 / n, "s", floor_cpu * 100_000 / n,
           "<= 10", floor_label="executemany of its snapshot rows, trigger kept, CPU",
           note=f"median of {ROUNDS} runs at {n:,} accounts, scaled linearly; CPU time: on an idle machine the wall "
           "time is about this, on a busy one it waits for other processes")  # fmt: skip
    replays = []
    for _ in range(ROUNDS):
        copy = snapshot(before)  # a fresh copy each time: a replay writes
        started = time.process_time()
        replays.append((replay_seconds(copy, statements), time.process_time() - started))
        copy.unlink()
    before.unlink()
    replayed, replayed_cpu = median(replays)
    print(
        f"  floor: its {len(statements)} SQL statements replayed in sqlite3 on the same data, median of {ROUNDS}: "
        f"{replayed:.2f} s (runs {spread([r[0] for r in replays])}; CPU {replayed_cpu:.2f} s); the flat model's "
        f"median / replay: {flat[0] / replayed:.1f}x wall, {flat[1] / max(replayed_cpu, 1e-6):.1f}x CPU"
    )
    report("score, flat model, per 100k accounts (vs its SQL replayed)", flat[0] * 100_000 / n, "s",
           replayed * 100_000 / n, "<= 10", floor_label="its SQL statements replayed in sqlite3",
           note=f"median of {ROUNDS} runs at {n:,} accounts, scaled linearly")  # fmt: skip
    report("score, flat model, CPU (vs its SQL replayed, CPU)", flat[1], "s", replayed_cpu, "-",
           floor_label="its SQL statements replayed in sqlite3, CPU", note=f"{n:,} accounts, medians of {ROUNDS}")


def compare(title: str, runs: list[tuple[float, float]], base_runs: list[tuple[float, float]], base_label: str,
            goal: str, n: int, note: str) -> None:  # fmt: skip
    """One model's median against another's on the same data: wall and CPU, the ratio of the medians (reported)
    and, printed beside it, the median of each round's ratio (a round's two runs ran minutes apart at most, so a
    load that comes and goes touches both)."""
    run, base = median(runs), median(base_runs)
    paired = median([(wall / base_wall, cpu / base_cpu) for (wall, cpu), (base_wall, base_cpu) in
                     zip(runs, base_runs, strict=True)])  # fmt: skip
    print(f"  {title}: {run[0] / base[0]:.2f}x wall, {run[1] / base[1]:.2f}x CPU, ratios of the medians of {ROUNDS} "
          f"runs (goal {goal}; {note}); the median of the rounds' own ratios: {paired[0]:.2f}x wall, "
          f"{paired[1]:.2f}x CPU")  # fmt: skip
    report(f"score, {title}", run[0], "s", base[0], goal, floor_label=f"{base_label}'s median",
           note=f"{n:,} accounts, medians of {ROUNDS} interleaved runs; {note}")  # fmt: skip
    report(f"score, {title}, CPU", run[1], "s", base[1], goal, floor_label=f"{base_label}'s median, CPU",
           note=f"{n:,} accounts, medians of {ROUNDS} interleaved runs; CPU time: the wall time waits for other "
           "processes on a busy machine")  # fmt: skip


def rounds(database: Database, tmp: Path) -> dict[str, list[tuple[float, float]]]:
    """Every model run ROUNDS times, interleaved (flat, grouped, flat 8, scorecard, flat, ...), each from the same
    starting state (`clear`): whatever a run leaves behind, or the machine's load at one moment, falls on every
    model alike rather than on one."""
    paths = {}
    for name, text, _ in MODELS:
        paths[name] = MODEL if text is None else tmp / f"{name}.yaml"
        if text is not None:
            paths[name].write_text(text, encoding="utf-8")
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in MODELS}
    for round_ in range(1, ROUNDS + 1):
        for name, _, label in MODELS:
            approve(database, paths[name])
            clear(database)
            runs[name].append(timed_score(database, f"{label} [round {round_}/{ROUNDS}]"))
    print(f"medians of {ROUNDS} interleaved runs each (wall | CPU, seconds; the runs in order):")
    for name, _, _ in MODELS:
        wall, cpu = median(runs[name])
        print(f"  {name:<9}  {wall:6.2f} | {cpu:6.2f}   (wall {spread([r[0] for r in runs[name]])}; CPU "
              f"{spread([r[1] for r in runs[name]])})")
    return runs


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        database = Database(f"sqlite:///{path}")
        upgrade(database.engine)
        t0 = time.perf_counter()
        readings, surveys = set_up(database, n)
        print(
            f"set-up: {n:,} accounts, {readings:,} KPI readings ({READINGS_PER_KPI} per reading KPI; 1 logins, 1 npv "
            f"and 1 ltv), {surveys:,} survey responses ({SURVEYS_PER_KIND} nps + {SURVEYS_PER_KIND} csat per "
            f"account), 4 cash flows and 1 financials row per account, in {time.perf_counter() - t0:.1f} s (not timed)"
        )
        approve(database, MODEL)
        checkpoint(database)
        started = time.process_time()
        with database.transaction() as session:
            score_portfolio(session, NOW, NOW)
        print(f"warm-up: the flat model scored once, not timed (CPU {time.process_time() - started:.2f} s)")
        runs = rounds(database, Path(tmp))
        flat = median(runs["flat"])
        print(f"  the flat model's median scaled to 100k accounts: {flat[0] * 100_000 / n:.1f} s wall, "
              f"{flat[1] * 100_000 / n:.1f} s CPU (goal <= 10 s)")  # fmt: skip
        compare("grouped / flat", runs["grouped"], runs["flat"], "the flat model", "<= 1.3x", n,
                "what groups, thresholds and statuses cost: the same 6 KPIs on the same data")  # fmt: skip
        compare("scorecard / flat 8", runs["scorecard"], runs["flat8"], "the flat 8-KPI model", "<= 1.3x", n,
                "issue 14: groups, statuses and derived KPIs vs without, the same 8 KPIs")  # fmt: skip
        compare("flat 8 / flat", runs["flat8"], runs["flat"], "the flat model", "-", n, "what 2 more KPIs cost")
        compare("scorecard / flat", runs["scorecard"], runs["flat"], "the flat model", "-", n,
                "the scorecard's machinery and its 2 more KPIs together")  # fmt: skip
        print("memory goal: peak ru_maxrss <= 300 MB for 100k accounts, independent of the portfolio's size")
        print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        report("score, peak ru_maxrss of the process", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "MB", None, "<= 300", note=f"{n:,} accounts, all {ROUNDS * len(MODELS)} timed runs")
        floors(database, path, n, flat)
        database.dispose()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    ROUNDS = next((int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--rounds=")), ROUNDS)
    main(int(args[0].replace("_", "")) if args else 100_000)
