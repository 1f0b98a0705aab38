"""bench/evaluate.py at a tiny size, so that it cannot rot: it runs the CLI's path and prints each run beside the
replay of its own statements, with the ratio and the 3x goal."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "evaluate.py"
pytestmark = pytest.mark.slow  # two evaluate runs with their worker processes, and their replays


def test_the_evaluate_bench_runs_tiny_and_prints_each_figure_beside_its_floor() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "300", "--full-only"], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "set-up 300 accounts" in out
    for run in ("first run", "nightly re-run"):
        assert f"  {run}: 300 accounts in " in out
    whole = r"whole run [\d.]+ s; floor: its statements replayed [^;]*; ratio [\d.]+x \(goal <= 3x"
    assert len(re.findall(whole, out)) == 2
    assert len(re.findall(r"apply stage [\d.]+ s; floor: its statements replayed [\d.]+ s; ratio [\d.]+x", out)) == 2
    # 300 accounts: 1 in 50 of each problem (bench/evaluate.py's _kind), a review and an escalation for each
    assert "after both runs: 30 escalations, 30 reviews" in out
