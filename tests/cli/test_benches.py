"""Every bench script still runs, at a tiny size, and prints its figures in the one format `make bench` reads
(`BENCH<TAB>{json}` lines from bench/common.report: figure, floor, ratio, goal), so that no bench rots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
HELPERS = {"common.py", "bulk.py", "backends.py", "run.py"}
# The arguments each script finishes quickly with (what a size means is each script's own: rows, accounts, runs;
# web also takes seconds and clients, as its default load runs for a minute).
TINY = {"cold_start": "2", "review_transitions": "5", "scheduler": "300", "outbox": "20", "signing": "2",
        "report": "200", "cycle": "200", "evaluate": "200", "score": "200", "audit": "200", "imports": "200",
        "lists": "50", "rules_test": "0", "scorecard": "2 50", "shards": "200", "web": "50 2 2"}
SCRIPTS = sorted(path.stem for path in BENCH.glob("*.py") if path.name not in HELPERS)


def records(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line.split("\t", 1)[1]) for line in stdout.splitlines() if line.startswith("BENCH\t")]


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPTS)
def test_a_bench_runs_tiny_and_prints_its_figures(name: str) -> None:
    done = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *TINY.get(name, "5").split()],
                          capture_output=True, text=True, cwd=BENCH.parent, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    found = records(done.stdout)
    assert found, done.stdout[-2000:]
    for record in found:
        assert {"name", "figure", "unit", "floor", "ratio", "goal"} <= record.keys()
        assert isinstance(record["figure"], int | float)


@pytest.mark.slow
def test_make_bench_prints_one_table(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(BENCH / "run.py"), "--size", "2", "--log", str(tmp_path / "log"),
                           "signing"], capture_output=True, text=True, cwd=BENCH.parent, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert [cell.strip() for cell in lines[0].split("|")] == ["script", "figure", "value", "floor", "ratio", "goal",
                                                              "met"]
    assert any(line.startswith("signing ") and "ms" in line for line in lines[2:])
    assert "BENCH\t" not in done.stdout  # one table, not the scripts' raw lines
