"""Cold `pulsecheck scorecard ACCOUNT` (issue 14): its wall time (median of N subprocess runs of the installed
CLI, text and --json) beside `python -c "import sqlalchemy.orm"` and a bare `python -c pass`, interleaved in
the same run.

Set-up (not timed): the data of bench/score.py for a small portfolio (default 2,000 accounts), the scorecard
model of that bench (groups, statuses, npv, ltv, a tracked logins KPI) approved, and three snapshots per
account (today, 30 and 60 days ago), so that the scorecard shows its trend and history; a user for this login.
Goal: each <= 1.2x `import sqlalchemy.orm` (what any read command's cold start is held to, issue 17).
Run: .venv/bin/python bench/scorecard.py [RUNS] [ACCOUNTS]   (default 15 runs, 2,000 accounts)
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from common import report
from score import GROUPED, NOW, approve, set_up

from pulsecheck.app import os_login
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.workflow.scoring import score_portfolio
from pulsecheck.workflow.users import add_user

BIN = Path(sys.executable).parent
COMMANDS = {
    "scorecard A000001": ["scorecard", "A000001"],
    "scorecard A000001 --json": ["scorecard", "A000001", "--json"],
}


def build(path: Path, accounts: int) -> None:
    """The portfolio, the scorecard model approved and scored on three days, and this login as a reviewer."""
    database = Database(f"sqlite:///{path}")
    upgrade(database.engine)
    set_up(database, accounts)
    model = path.with_name("grouped.yaml")
    model.write_text(GROUPED, encoding="utf-8")
    approve(database, model)
    with database.transaction() as session:
        add_user(session, os_login(), ["reviewer"], NOW)
    for days in (60, 30, 0):
        with database.transaction() as session:
            score_portfolio(session, NOW - timedelta(days=days), NOW)
    database.dispose()


def main(runs: int, accounts: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        started = time.perf_counter()
        build(path, accounts)
        print(f"set-up: {accounts:,} accounts scored on 3 days with the scorecard model, in "
              f"{time.perf_counter() - started:.1f} s (not timed)")  # fmt: skip
        env = {**os.environ, "PULSECHECK_DATABASE_URL": f"sqlite:///{path}",
               "PULSECHECK_CONFIG": str(Path(tmp) / "none.toml")}  # fmt: skip
        env.pop("PULSECHECK_USER", None)
        Path(tmp, "none.toml").write_text("", encoding="utf-8")
        python = sys.executable
        argvs = {
            "python -c pass": [python, "-c", "pass"],
            "import sqlalchemy.orm": [python, "-c", "import sqlalchemy.orm"],
            **{name: [str(BIN / "pulsecheck"), *args] for name, args in COMMANDS.items()},
        }
        for argv in argvs.values():  # warm the file cache and the byte-code; each must succeed
            subprocess.run(argv, check=True, capture_output=True, env=env, cwd=tmp)
        samples: dict[str, list[float]] = {name: [] for name in argvs}
        cpu: dict[str, list[float]] = {name: [] for name in argvs}
        for _ in range(runs):  # interleaved, so that a busy moment of the machine hits every figure alike
            for name, argv in argvs.items():
                started, used = time.perf_counter(), _children_cpu()
                subprocess.run(argv, check=True, capture_output=True, env=env, cwd=tmp)
                samples[name].append(time.perf_counter() - started)
                cpu[name].append(_children_cpu() - used)
        median = {name: statistics.median(values) * 1000 for name, values in samples.items()}
        median_cpu = {name: statistics.median(values) * 1000 for name, values in cpu.items()}
        print(f"medians of {runs} runs, ms wall (CPU): "
              + ", ".join(f"{k} {v:.0f} ({median_cpu[k]:.0f})" for k, v in median.items()))  # fmt: skip
        print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
              "(on a busy machine compare the CPU figures)")  # fmt: skip
        report("python -c pass", median["python -c pass"], "ms", None, "-", note="bare interpreter")
        for name in COMMANDS:
            for figures, clock in ((median, "wall"), (median_cpu, "CPU")):
                report(f"cold `pulsecheck {name}`, {clock}", figures[name], "ms", figures["import sqlalchemy.orm"],
                       "<= 1.2x", floor_label=f"import sqlalchemy.orm, {clock}",
                       note=f"{accounts:,} accounts, 3 snapshots each")  # fmt: skip


def _children_cpu() -> float:
    """User + system seconds of the finished child processes so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


if __name__ == "__main__":
    args = [a.replace("_", "").replace(",", "") for a in sys.argv[1:]]
    main(int(args[0]) if args else 15, int(args[1]) if len(args) > 1 else 2000)
