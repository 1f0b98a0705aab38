"""`audit verify` over a large chain on SQLite, beside the floor of reading and hashing the same rows.

Set-up (not timed): N review events for N/4 reviews (bulk inserts), chained the way the commit hook chains them
(`storage.chain.append`), one entry per row.
Timed:
  verify   `pulsecheck audit verify`'s service (`verify_chain`): walk and re-hash every entry, then check every
           audited row against its latest entry, with as many processes as it chooses (two for a large chain on a
           machine with two cores), then again in one process
  floor    the same entries read with plain sqlite3 and each hashed once with hashlib (bare Python, one process)
CPU seconds (this process and its children) are printed beside wall seconds: on a shared machine the wall
figures move with other people's load, the ratios less so.
Run: .venv/bin/python bench/audit.py [N]   (default 1000000)
"""

from __future__ import annotations

import hashlib
import resource
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bulk import bulk_insert  # noqa: E402
from common import report as bench_report  # noqa: E402

from pulsecheck.storage.chain import append  # noqa: E402
from pulsecheck.storage.db import Database  # noqa: E402
from pulsecheck.storage.entries import BY_KIND
from pulsecheck.storage.migrate import upgrade  # noqa: E402
from pulsecheck.storage.models import Account, Review, ReviewEvent, User  # noqa: E402
from pulsecheck.workflow.audit import ChainReport, verify_chain  # noqa: E402
from pulsecheck.workflow.chainwalk import workers_for  # noqa: E402

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
GOAL = 10.0  # seconds for 1M entries (issue 12)


def seed(database: Database, n: int) -> None:
    reviews = max(1, n // 4)
    with database.engine.begin() as conn:
        bulk_insert(conn, User.__table__, [{"name": "bob", "roles": "reviewer", "created_at": NOW}])
        bulk_insert(
            conn,
            Account.__table__,
            ({"external_id": f"A{i}", "name": f"Account {i}", "owner_id": 1} for i in range(reviews)),
        )
        bulk_insert(
            conn,
            Review.__table__,
            (
                {"account_id": i + 1, "state": "closed", "reviewer": "bob", "created_at": NOW, "updated_at": NOW}
                | {"version_id": 1, "priority": "P3", "kind": "cadence", "reminders_sent": 0}
                for i in range(reviews)
            ),
        )
        bulk_insert(
            conn,
            ReviewEvent.__table__,
            (
                {"review_id": i % reviews + 1, "event": "escalate", "from_state": "draft", "to_state": "draft"}
                | {"actor": "bob", "at": NOW + timedelta(seconds=i), "cause": "scheduler"}
                for i in range(n)
            ),
        )
    spec = BY_KIND["review_event"]
    with database.transaction() as session:
        for kind, model in (("user", User), ("review", Review)):
            rows = session.execute(select(model.__table__)).mappings()
            append(session, [(BY_KIND[kind], dict(row)) for row in rows])
        last = 0
        while True:
            table = ReviewEvent.__table__
            batch = session.execute(select(table).where(table.c.id > last).order_by(table.c.id).limit(50_000))
            found = [dict(row) for row in batch.mappings()]
            if not found:
                break
            append(session, [(spec, row) for row in found])
            last = found[-1]["id"]


def floor(path: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of reading every entry with sqlite3 and hashing each once."""
    started, cpu = time.perf_counter(), _cpu()
    with sqlite3.connect(path) as conn:
        for seq, prev, kind, record, content in conn.execute(
            "SELECT seq, prev_hash, kind, record_id, content FROM audit_chain ORDER BY seq"
        ):
            hashlib.sha256(f"{seq}\n{prev}\n{kind}\n{record}\n{content}".encode()).hexdigest()
    return time.perf_counter() - started, _cpu() - cpu


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.db"
        database = Database(f"sqlite:///{path}")
        upgrade(database.engine)
        started = time.perf_counter()
        seed(database, n)
        print(f"set-up: {n:,} review events chained in {time.perf_counter() - started:.1f} s")
        with database.transaction() as session:
            workers = workers_for(session)
        took, cpu, report = timed(database, workers)
        one, one_cpu, _ = timed(database, 1)
        base, base_cpu = floor(path)
        label = f"audit verify ({workers} {'processes' if workers > 1 else 'process'})"
        print(f"{label:<36} {took:8.2f} s   ({report.entries:,} entries, "
              f"{report.records:,} records; {cpu:.2f} s CPU)")
        print(f"{'audit verify (1 process)':<36} {one:8.2f} s   ({one_cpu:.2f} s CPU)")
        print(f"{'floor: sqlite3 read + sha256 each':<36} {base:8.2f} s   ({base_cpu:.2f} s CPU)")
        print(f"{'ratio':<36} {took / base:8.1f} x   (1 process: {one / base:.1f}x; CPU: {cpu / base_cpu:.1f}x)")
        print(f"{'goal at 1M entries':<36} {GOAL:8.2f} s   scaled to 1M: {took * 1_000_000 / report.entries:.2f} s")
        per_million = 1_000_000 / report.entries
        note = f"{report.entries:,} entries, scaled linearly to 1M"
        bench_report(f"{label}, per 1M entries", took * per_million, "s", base * per_million, f"<= {GOAL:.0f}",
                     floor_label="sqlite3 read + sha256 each", note=note)
        bench_report("audit verify, forced to 1 process, per 1M entries", one * per_million, "s",
                     base * per_million, "-", floor_label="sqlite3 read + sha256 each", note=note)
        database.dispose()


def timed(database: Database, workers: int) -> tuple[float, float, ChainReport]:
    """(wall seconds, CPU seconds of this process and its children, report) of one `verify_chain`."""
    started, cpu = time.perf_counter(), _cpu()
    with database.transaction() as session:
        report = verify_chain(session, workers)
    took, cpu = time.perf_counter() - started, _cpu() - cpu
    assert report.ok, report.problems[:3]
    return took, cpu, report


def _cpu() -> float:
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
