"""bench/score.py runs at a tiny size and prints every figure the issue asks for (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_score_bench_prints_every_model_the_comparisons_the_floors_and_the_goals() -> None:
    done = subprocess.run(
        [sys.executable, "score.py", "60"], cwd=BENCH, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    for expected in (
        "score, flat model (examples/scoring.yaml", "floor (executemany", "score, grouped:", "score, flat 8:",
        "score, scorecard:", "grouped / flat:", "scorecard / flat 8:", "scorecard / flat:", "SQL statements replayed",
        "goal <= 1.3x", "goal <= 10",
    ):  # fmt: skip
        assert expected in done.stdout
    assert "60 accounts in" in done.stdout and "60 scored" in done.stdout
