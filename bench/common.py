"""What every bench prints: one figure beside its floor, the ratio and the goal, in a line people read and a
line the table runner (`bench/run.py`, `make bench`) collects.

Call `report(name, figure, unit, floor, goal)` once per figure. `goal` is either a ratio to the floor
("<= 1.2x", ">= 0.05x") or an absolute bound in the figure's unit ("<= 3", ">= 1000"); `higher=True` says a
bigger figure is better (a rate), so the ratio is floor / figure (how many times slower than the floor).
The machine line is `BENCH<TAB>` followed by one JSON object; everything else a script prints is for people.
"""

from __future__ import annotations

import json
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PREFIX = "BENCH\t"
_GOAL = re.compile(r"^\s*(<=|>=)\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*(x?)\s*$")


def goal_met(goal: str, figure: float, ratio: float | None) -> bool | None:
    """Whether `figure` (or its `ratio` for an "...x" goal) meets `goal`; None when the goal is not one of the
    two forms."""
    match = _GOAL.match(goal)
    if match is None:
        return None
    op, bound, is_ratio = match.group(1), float(match.group(2).replace(",", "").replace("_", "")), match.group(3)
    value = ratio if is_ratio else figure
    if value is None:
        return None
    return value <= bound if op == "<=" else value >= bound


def report(name: str, figure: float, unit: str, floor: float | None, goal: str, *, floor_label: str = "",
           higher: bool = False, note: str = "") -> dict[str, Any]:
    """Print one figure for people and once for the table runner; returns the record."""
    ratio: float | None = None
    if floor:
        ratio = floor / figure if higher else figure / floor
        if higher and figure == 0:
            ratio = None
    record = {
        "name": name, "figure": figure, "unit": unit, "floor": floor, "floor_label": floor_label,
        "ratio": ratio, "goal": goal, "higher": higher, "met": goal_met(goal, figure, ratio), "note": note,
    }
    floor_text = "-" if floor is None else f"{fmt(floor)} {unit}" + (f" ({floor_label})" if floor_label else "")
    ratio_text = "-" if ratio is None else f"{ratio:.2f}x"
    print(f"{name}: {fmt(figure)} {unit} | floor {floor_text} | ratio {ratio_text} | goal {goal}"
          + (f" | {note}" if note else ""), flush=True)
    print(PREFIX + json.dumps(record, sort_keys=True), flush=True)
    return record


def fmt(value: float) -> str:
    """A figure with as many digits as a reader needs."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def size_arg(default: int) -> int:
    """The bench's size: its first command-line argument, else `default`."""
    return int(sys.argv[1].replace("_", "").replace(",", "")) if len(sys.argv) > 1 else default


def median_wall(argv: Sequence[str], runs: int, env: dict[str, str] | None = None) -> float:
    """Median wall time in seconds of `runs` subprocess runs of `argv` (each must exit 0)."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(list(argv), check=True, capture_output=True, env=env)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds `fn` took, and what it returned."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


@contextmanager
def captured(engine: Any) -> Iterator[list[tuple[str, Any, bool]]]:
    """Every SQL statement `engine` sends while the block runs, with its driver-ready parameters: what
    `replay_seconds` runs again as the plain-SQL floor."""
    from sqlalchemy import event

    seen: list[tuple[str, Any, bool]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        seen.append((statement, parameters, many))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", grab)


def snapshot(path: Path, suffix: str = "-floor") -> Path:
    """A copy of the SQLite file at `path` (sqlite3's backup), to replay writes on the data they first met; named
    after it with `suffix`."""
    copy = path.with_name(path.stem + suffix + ".db")
    source, target = sqlite3.connect(path), sqlite3.connect(copy)
    with target:
        source.backup(target)
    source.close()
    target.close()
    return copy


def replay_seconds(path: Path, statements: list[tuple[str, Any, bool]]) -> float:
    """Seconds sqlite3 takes to run `statements` again on the file at `path`, rows fetched, in one transaction."""
    from pulsecheck.storage.db import SQLITE_PRAGMAS

    conn = sqlite3.connect(path)
    for pragma in SQLITE_PRAGMAS:  # as the application's connections
        conn.execute(pragma)
    started = time.perf_counter()
    for statement, parameters, many in statements:
        if many:
            conn.executemany(statement, parameters)
        else:
            conn.execute(statement, parameters).fetchall()
    conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed
