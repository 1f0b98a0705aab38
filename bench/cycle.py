"""Review cycle over a large portfolio: `cycle start` on N accounts x 12 monthly snapshots, SQLite.

Set-up (not timed): `build_portfolio` of bench/report.py (40 owners, 1% of accounts without an owner, ~1%
with an open escalation, 2% with a deviation), plus a reviewer `bob` who runs the cycle.
Timed: the service behind `cycle start --period 2026-11` (all segments: 100k account ids snapshotted, scope
findings computed), in one transaction; then, for information, each of the first five steps; then `cycle show`
(what `/cycles/ID` and `GET /api/v1/cycles/ID` read: `cycle_dict`) after decisions on up to 50 at-risk accounts,
beside the whole-portfolio account-name map it read before it looked up only the accounts it names.
The clock is fixed for both the data and the run. Floor: the same SQL statements replayed with sqlite3 on a copy
of the file made before the timed start (bench/common.py), same run.
Run: .venv/bin/python bench/cycle.py [N_ACCOUNTS] [--keep DIR]   (default 100000; goals <= 10 s and
<= 0.5 s)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import captured, replay_seconds, report, snapshot  # noqa: E402
from report import MONTHS, NOW, build_portfolio  # noqa: E402  (bench/report.py's data builder)
from sqlalchemy import select  # noqa: E402

from pulsecheck.storage.db import Database  # noqa: E402
from pulsecheck.storage.models import User  # noqa: E402
from pulsecheck.workflow import cycles  # noqa: E402
from pulsecheck.workflow.cycles.access import account_names  # noqa: E402
from pulsecheck.workflow.cycles.steps import run_step  # noqa: E402
from pulsecheck.workflow.users import add_user  # noqa: E402


def timed_start(database: Database) -> tuple[int, float, int]:
    """(cycle id, seconds, findings) of `cycle start` over every account."""
    start = time.perf_counter()
    with database.transaction() as session:
        bob = session.scalars(select(User).where(User.name == "bob")).one()
        cycle = cycles.start(session, "2026-11", [], None, bob, NOW)
        findings = len(cycles.findings_of(session, cycle.id))
        cycle_id = cycle.id
    return cycle_id, time.perf_counter() - start, findings


def main(n: int, keep: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        database = build_portfolio(folder / "bench-cycle.db", n)
        with database.transaction() as session:
            add_user(session, "bob", ["reviewer"], NOW, manager="olga")
        print(f"set-up: {n:,} accounts x {MONTHS} monthly snapshots in {time.perf_counter() - t0:.1f} s (not timed)")
        copy = snapshot(folder / "bench-cycle.db")
        with captured(database.engine) as statements:
            cycle_id, elapsed, findings = timed_start(database)
        print(f"cycle start: {findings} finding(s)")
        report(f"cycle start (all segments, {n:,} accounts)", elapsed, "s", replay_seconds(copy, statements), "<= 10",
               floor_label=f"its {len(statements)} SQL statements replayed in sqlite3")
        settings = cycles.CycleSettings()
        for step in ("scope", "data", "model", "trends", "classify"):
            t1 = time.perf_counter()
            with database.transaction() as session:
                bob = session.scalars(select(User).where(User.name == "bob")).one()
                run_step(session, cycle_id, step, bob, NOW, settings)
            print(f"  cycle step {step}: {time.perf_counter() - t1:.2f} s")
        timed_show(database, folder, cycle_id, n)
        database.dispose()


def timed_show(database: Database, folder: Path, cycle_id: int, n: int) -> None:
    """`cycle show` after decisions on up to 50 at-risk accounts (set-up not timed), with its floor."""
    with database.transaction() as session:
        bob = session.scalars(select(User).where(User.name == "bob")).one()
        classified = cycles.steps_of(session, cycle_id)["classify"].result.get("at_risk", [])
        for row in classified[:50]:
            cycles.decide(session, cycle_id, row["account"], "monitor", "bob", "bench", bob, NOW)
    copy = snapshot(folder / "bench-cycle.db")
    with captured(database.engine) as statements:
        t2 = time.perf_counter()
        with database.transaction() as session:
            shown = cycles.cycle_dict(session, cycles.get_cycle(session, cycle_id))
        elapsed = time.perf_counter() - t2
    report(f"cycle show ({n:,} accounts, {len(shown['decisions'])} decisions)", elapsed, "s",
           replay_seconds(copy, statements), "<= 0.5",
           floor_label=f"its {len(statements)} SQL statements replayed in sqlite3")
    t3 = time.perf_counter()
    with database.transaction() as session:
        every = account_names(session)
    print(f"  for information: every account's name, as cycle show read it before: {time.perf_counter() - t3:.3f} s "
          f"({len(every):,} names)")


if __name__ == "__main__":
    args = sys.argv[1:]
    keep = args[args.index("--keep") + 1] if "--keep" in args else None
    numbers = [a for a in args if a.replace("_", "").isdigit()]
    main(int(numbers[0].replace("_", "")) if numbers else 100_000, keep)
