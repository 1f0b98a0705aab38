"""Import throughput and memory: `pulsecheck readings import` of N rows, run as a user runs it (a subprocess of
the installed CLI on a SQLite file), each figure printed beside a floor measured in the same run.

Set-up (not timed): `pulsecheck init`, 10,000 accounts imported through the CLI; a readings CSV of N rows written
as an export looks (every account x 5 KPIs x one reading a day, at 06:00 UTC, values with 2 decimals, source `crm`).
Timed: the CLI import (wall time and the child's peak RSS, from os.wait4), then the same file again (every row
already stored: the dedupe path). Floors: `python -c pass` and `pulsecheck --version` RSS; the same rows read
with csv.reader and written with sqlite3 executemany into the same schema (plain INSERT, one transaction) in a
child process. Also: the peak RSS of a 52 MB accounts CSV, and the time to refuse a YAML alias bomb (beside
validating the example model, and in this process without the CLI's start-up).
Run: .venv/bin/python bench/imports.py [N_ROWS]   (default 3,000,000; goal >= 100k rows/s, <= 200 MB)
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

from common import report

from pulsecheck.errors import InputError
from pulsecheck.yamlfile import load_text

BIN = Path(sys.executable).parent
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ACCOUNTS = 10_000
KPIS = ("usage", "seats", "logins", "open_tickets", "on_time_delivery")
BOMB = "\n".join(
    [f"{chr(97)}: &{chr(97)} [{', '.join(['lol'] * 9)}]"]
    + [f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join([f'*{chr(96 + i)}'] * 9)}]" for i in range(1, 9)]
)
FLOOR = """
import csv, sqlite3, sys
from datetime import datetime, UTC
db, path = sys.argv[1], sys.argv[2]
ids = {ext: pk for ext, pk in sqlite3.connect(db).execute("SELECT external_id, id FROM accounts")}
conn = sqlite3.connect(db)
conn.execute("PRAGMA journal_mode=WAL"); conn.execute("PRAGMA synchronous=NORMAL")
now = "2026-11-24 09:00:00.000000"
def rows():
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for account, kpi, value, observed, source in reader:
            when = datetime.fromisoformat(observed).astimezone(UTC).replace(tzinfo=None)
            yield ids[account], kpi, float(value), when.isoformat(" ", "microseconds"), source, now
with conn:
    conn.executemany(
        "INSERT INTO kpi_readings (account_id, kpi, value, observed_at, source, imported_at) VALUES (?,?,?,?,?,?)",
        rows(),
    )
"""


def run(args: list[str], env: dict[str, str], refused: bool = False) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, last output line) of one child process, measured by os.wait4. A failed child
    (one expected to succeed, or one expected to refuse that did not) stops the bench: its time is no figure."""
    start = time.perf_counter()
    child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    lines = output.strip().splitlines() or [""]
    if (child.returncode != 0) != refused:
        sys.exit(f"error: {' '.join(args[:3])[:80]} exited {child.returncode}: {' | '.join(lines[-3:])}")
    return elapsed, usage.ru_maxrss / 1024, lines[-1]


def write_readings(path: Path, n: int) -> None:
    """n rows: day after day, every account's 5 KPIs at 06:00 UTC."""
    rng = random.Random(7)
    written, day = 0, date(2020, 1, 1)
    with path.open("w", newline="") as handle:
        handle.write("account,kpi,value,observed_at,source\n")
        while written < n:
            batch = min(n - written, ACCOUNTS * len(KPIS))
            handle.writelines(
                f"A{i // len(KPIS):05d},{KPIS[i % len(KPIS)]},{rng.randint(0, 10000) / 100},{day}T06:00:00Z,crm\n"
                for i in range(batch)
            )
            written, day = written + batch, day + timedelta(days=1)


def write_accounts(path: Path, n: int) -> None:
    with path.open("w", newline="") as handle:
        handle.write("external_id,name,segment,tier,arr,renewal_date,contract_start,stage\n")
        handle.writelines(
            f"A{i:05d},Account number {i} of the bench,enterprise,gold,{i * 10}.5,2027-01-15,2024-02-01,active\n"
            for i in range(n)
        )


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**os.environ, "PULSECHECK_DATABASE_URL": f"sqlite:///{root / 'bench.db'}"}
        cli = str(BIN / "pulsecheck")
        write_accounts(root / "accounts.csv", ACCOUNTS)
        print(run([cli, "init"], env)[2])  # the current login becomes the first admin
        print(run([cli, "accounts", "import", str(root / "accounts.csv")], env)[2])
        # The same schema and accounts, no readings yet: copied by SQLite's backup (a file copy would miss what
        # is still in the write-ahead log, and the floor would find no accounts).
        with closing(sqlite3.connect(root / "bench.db")) as source, closing(sqlite3.connect(root / "floor.db")) as copy:
            source.backup(copy)
        readings = root / "readings.csv"
        write_readings(readings, n)
        size = readings.stat().st_size / 2**20
        _, python_rss, _ = run([sys.executable, "-c", "pass"], env)
        _, cli_rss, _ = run([cli, "--version"], env)
        seconds, rss, said = run([cli, "readings", "import", str(readings)], env)
        again, again_rss, said_again = run([cli, "readings", "import", str(readings)], env)
        floor, floor_rss, _ = run([sys.executable, "-c", FLOOR, str(root / "floor.db"), str(readings)], env)
        print(f"file: {n:,} readings, {size:,.0f} MB; {said}")
        print(
            f"import: {seconds:.1f} s = {n / seconds:,.0f} rows/s; floor (csv.reader + sqlite3 executemany, same "
            f"schema and rows) {floor:.1f} s = {n / floor:,.0f} rows/s; ratio {seconds / floor:.1f}x "
            f"(goal >= 100,000 rows/s)"
        )
        print(
            f"peak RSS: {rss:,.0f} MB (goal <= 200); floors: python -c pass {python_rss:,.0f} MB, "
            f"pulsecheck --version {cli_rss:,.0f} MB, the floor script {floor_rss:,.0f} MB"
        )
        print(f"again, every row already stored: {again:.1f} s = {n / again:,.0f} rows/s, {again_rss:,.0f} MB")
        print(f"  {said_again}")
        report("readings import (CLI)", n / seconds, "rows/s", n / floor, ">= 100000", higher=True,
               floor_label="csv.reader + sqlite3 executemany", note=f"{n:,} rows")
        report("readings import, peak RSS", rss, "MB", python_rss, "<= 200", floor_label="python -c pass",
               note=f"{n:,} rows; pulsecheck --version {cli_rss:,.0f} MB")
        report("readings import again (every row stored)", n / again, "rows/s", n / floor, "-", higher=True,
               floor_label="csv.reader + sqlite3 executemany", note=f"{n:,} rows, peak RSS {again_rss:,.0f} MB")
        big = root / "accounts-52mb.csv"
        write_accounts(big, 52 * 2**20 // 90)
        seconds, rss, said = run([cli, "accounts", "import", str(big)], env)
        print(f"accounts: {big.stat().st_size / 2**20:,.0f} MB CSV in {seconds:.1f} s, peak RSS {rss:,.0f} MB; {said}")
        report("accounts import of a 52 MB CSV, peak RSS", rss, "MB", python_rss, "<= 200",
               floor_label="python -c pass", note=f"{seconds:.1f} s")
        bomb = root / "bomb.yaml"
        bomb.write_text(BOMB + "\n")
        seconds, rss, said = run([cli, "model", "validate", str(bomb)], env, refused=True)
        floor, floor_rss, _ = run([cli, "model", "validate", str(EXAMPLES / "scoring.yaml")], env)
        start = time.perf_counter()
        try:
            load_text(BOMB, "bomb.yaml")
        except InputError:
            pass
        inside = time.perf_counter() - start
        print(
            f"alias bomb ({bomb.stat().st_size} bytes, 9^9 values once expanded): `model validate` refused it in "
            f"{seconds:.2f} s, {rss:,.0f} MB; floor: validating examples/scoring.yaml {floor:.2f} s, "
            f"{floor_rss:,.0f} MB; the refusal itself (load_text in this process) {inside * 1000:.1f} ms; {said}"
        )
        report("model validate refuses a YAML alias bomb", seconds, "s", floor, "-",
               floor_label="validating examples/scoring.yaml", note=f"peak RSS {rss:,.0f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1].replace("_", "").replace(",", "")) if len(sys.argv) > 1 else 3_000_000)
