"""`make bench`: run every bench script and print ONE table of their figures (figure | floor | ratio | goal).

Each script prints, per figure, a `BENCH<TAB>{json}` line through `bench.common.report`; this runner collects
those lines and writes the rest of each script's output to a log (its path is printed under the table).
Run: .venv/bin/python bench/run.py [--size N] [SCRIPT ...]   (no size: each script's own default)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import PREFIX, fmt  # bench/ is on sys.path: this runs as a script, like every bench

HERE = Path(__file__).resolve().parent

HELPERS = {"common.py", "bulk.py", "backends.py", "run.py", "__init__.py"}


def scripts(names: list[str]) -> list[Path]:
    """The bench scripts to run: those named (with or without .py), else every script in bench/."""
    if names:
        return [HERE / (name if name.endswith(".py") else f"{name}.py") for name in names]
    return sorted(path for path in HERE.glob("*.py") if path.name not in HELPERS)


def run_one(script: Path, size: int | None, log: Any) -> tuple[list[dict[str, Any]], int, float]:
    """Run one script; its records, exit status and wall time (other output goes to `log`)."""
    argv = [sys.executable, str(script)] + ([str(size)] if size is not None else [])
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=HERE.parent)
    elapsed = time.perf_counter() - started
    records = []
    log.write(f"=== {' '.join(argv)} (exit {proc.returncode}, {elapsed:.1f} s)\n")
    for line in proc.stdout.splitlines():
        if line.startswith(PREFIX):
            records.append(json.loads(line[len(PREFIX):]))
        else:
            log.write(line + "\n")
    log.write(proc.stderr)
    return records, proc.returncode, elapsed


def row(script: str, record: dict[str, Any]) -> list[str]:
    """One table row for one figure."""
    unit, floor, ratio, met = record["unit"], record["floor"], record["ratio"], record["met"]
    return [
        script, record["name"], f"{fmt(record['figure'])} {unit}",
        "-" if floor is None else f"{fmt(floor)} {unit}" + (f" ({record['floor_label']})"
                                                             if record.get("floor_label") else ""),
        "-" if ratio is None else f"{ratio:.2f}x", record["goal"],
        {True: "yes", False: "NO", None: "-" if record["goal"] == "-" else "?"}[met],
    ]


def table(rows: list[list[str]]) -> str:
    """Rows as a plain-text table with a header."""
    head = ["script", "figure", "value", "floor", "ratio", "goal", "met"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in [head, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=None, help="size passed to every script")
    parser.add_argument("--log", type=Path, default=None, help="where the scripts' other output goes")
    parser.add_argument("scripts", nargs="*")
    args = parser.parse_args(argv)
    log_path = args.log or Path(tempfile.gettempdir()) / "pulsecheck-bench.log"
    rows, failed = [], []
    with log_path.open("w", encoding="utf-8") as log:
        for script in scripts(args.scripts):
            records, code, elapsed = run_one(script, args.size, log)
            print(f"ran {script.name} in {elapsed:.1f} s" + (f" (exit {code})" if code else ""),
                  file=sys.stderr, flush=True)
            if code:
                failed.append(script.name)
            if not records:
                rows.append([script.stem, "(no BENCH lines)", "-", "-", "-", "-", "?"])
            rows.extend(row(script.stem, record) for record in records)
    print(table(rows))
    print(f"\nother output: {log_path}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
