"""bench/score.py runs at a tiny size and prints every figure the issue asks for (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_score_bench_prints_both_models_the_floor_and_the_goals() -> None:
    done = subprocess.run(
        [sys.executable, "score.py", "60"], cwd=BENCH, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    for expected in ("score, flat model", "floor (executemany", "score, scorecard model", "/ flat:", "goal"):
        assert expected in done.stdout
    assert "60 accounts in" in done.stdout and "60 scored" in done.stdout
