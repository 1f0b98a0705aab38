"""Cold start of read commands: each one's wall time (median of N subprocess runs of the installed CLI) beside
`python -c "import sqlalchemy.orm"` and a bare `python -c pass` measured in the same run, interleaved.

Set-up (not timed): a SQLite database with a user for this login and one review with a risk and an action.
Goal: each command <= 1.2x `import sqlalchemy.orm` (it cannot do less than import SQLAlchemy's ORM).
Run: .venv/bin/python bench/cold_start.py [RUNS]   (default 15 runs per command)
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from common import report, size_arg

from pulsecheck.app import os_login
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Account
from pulsecheck.workflow import reviews
from pulsecheck.workflow.review_form import parse_form
from pulsecheck.workflow.users import add_user, get_user

BIN = Path(sys.executable).parent
NOW = datetime.now(UTC).replace(microsecond=0)
COMMANDS = {
    "review show 1 --json": ["review", "show", "1", "--json"],
    "review show 1": ["review", "show", "1"],
    "review list --json": ["review", "list", "--json"],
    "scheduler jobs": ["scheduler", "jobs"],
}


def build(url: str) -> None:
    """One user (this login, admin and reviewer) and one review of one account, filled in."""
    database = Database(url)
    upgrade(database.engine)
    me = os_login()
    with database.transaction() as session:
        add_user(session, me, ["admin", "reviewer", "manager"], NOW)
        session.add(Account(external_id="ACME", name="Acme Corp"))
        session.flush()
        review = reviews.new_review(session, "ACME", me, NOW, timedelta(days=14))
        form = parse_form({
            "account_goals": "grow", "goal_summary": "on track", "overall_assessment": "fine",
            "next_review_date": date.today() + timedelta(days=90),
            "risks": [{"description": "churn", "actions": [{"description": "call", "owner": me,
                                                             "due_date": date.today() + timedelta(days=30)}]}],
        }, "bench")
        reviews.fill(session, review.id, form, get_user(session, me), NOW)
    database.dispose()


def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        build(url)
        env = {**os.environ, "PULSECHECK_DATABASE_URL": url, "PULSECHECK_CONFIG": str(Path(tmp) / "none.toml")}
        env.pop("PULSECHECK_USER", None)
        # The warm-up run writes the byte-code a user's second run reads (site-packages has it from pip already);
        # with PYTHONDONTWRITEBYTECODE inherited, every run would compile pulsecheck again and the floor would not.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        Path(tmp, "none.toml").write_text("", encoding="utf-8")
        python = sys.executable
        argvs = {
            "python -c pass": [python, "-c", "pass"],
            "import sqlalchemy.orm": [python, "-c", "import sqlalchemy.orm"],
            **{name: [str(BIN / "pulsecheck"), *args] for name, args in COMMANDS.items()},
        }
        samples: dict[str, list[float]] = {name: [] for name in argvs}
        cpu: dict[str, list[float]] = {name: [] for name in argvs}  # user + system time of the child
        for argv in argvs.values():  # warm the file cache and the byte-code
            subprocess.run(argv, check=True, capture_output=True, env=env)
        for _ in range(runs):  # interleaved, so that a busy moment of the machine hits every figure alike
            for name, argv in argvs.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                subprocess.run(argv, check=True, capture_output=True, env=env, cwd=tmp)
                samples[name].append(time.perf_counter() - started)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        median = {name: statistics.median(values) * 1000 for name, values in samples.items()}
        cpu_median = {name: statistics.median(values) * 1000 for name, values in cpu.items()}
        print(f"medians of {runs} runs, ms: " + ", ".join(f"{k} {v:.0f}" for k, v in median.items()))
        print("CPU medians (user + sys), ms: " + ", ".join(f"{k} {v:.0f}" for k, v in cpu_median.items()))
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        floor = median["import sqlalchemy.orm"]
        report("python -c pass", median["python -c pass"], "ms", None, "-", note="bare interpreter")
        for name in COMMANDS:
            report(f"cold `pulsecheck {name}`", median[name], "ms", floor, "<= 1.2x",
                   floor_label="import sqlalchemy.orm")
        # Wall time on a shared machine is noisy; CPU time (user + system) is the steadier figure.
        for name in COMMANDS:
            report(f"cold `pulsecheck {name}` CPU", cpu_median[name], "ms", cpu_median["import sqlalchemy.orm"],
                   "<= 1.2x", floor_label="import sqlalchemy.orm, CPU")


if __name__ == "__main__":
    main(size_arg(15))
