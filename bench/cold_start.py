"""Cold start of read commands: each one's wall time (median of N subprocess runs of the installed CLI) beside
`python -c "import sqlalchemy.orm"` and a bare `python -c pass` measured in the same run, interleaved.

Set-up (not timed), through the CLI as the README tour does it, in a directory of its own: `init --sample` (the
sample `pulsecheck.toml`, which sets nearly every section), the sample team, accounts, readings, surveys and
issues, an approved model and a scoring run, one review opened on its scorecard, filled, submitted and approved
(so its audit chain entries, signatures and scheduler jobs exist), a draft review of every other account
(`review list` lists twelve, `scheduler jobs` as many jobs), and a portfolio review cycle run to its classify
step. The commands then run there as a user's would: with the settings file, which an earlier command validated
(the CLI remembers it in the cache directory, here one of the bench's own, as it keeps compiled templates). Two
more rows: `review show` in a directory with no settings file at all, and right after the settings file changed
(not remembered yet: it is validated again).

Goal: each command <= 1.2x `import sqlalchemy.orm`. The read commands run on SQLAlchemy Core: they import
`sqlalchemy`, not its ORM.
Run: .venv/bin/python bench/cold_start.py [RUNS]   (default 15 runs per command)
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import report, size_arg

BIN = Path(sys.executable).parent
PULSECHECK = str(BIN / "pulsecheck")
COMMANDS = {
    "review show 1 --json": ["review", "show", "1", "--json"],
    "review show 1": ["review", "show", "1"],
    "review list --json": ["review", "list", "--json"],
    "scheduler jobs": ["scheduler", "jobs"],
    "review verify 1": ["review", "verify", "1"],
    "audit verify": ["audit", "verify"],
    "users list": ["users", "list"],
    "accounts show ACME": ["accounts", "show", "ACME"],
    "outbox list": ["outbox", "list"],
    "inbox (bob)": ["--as", "bob", "inbox"],
    "model show": ["model", "show"],
    "report portfolio": ["report", "portfolio"],
    "scorecard ACME": ["scorecard", "ACME"],
    "cycle show 1": ["cycle", "show", "1"],
    "cycle verify 1": ["cycle", "verify", "1"],
    "cycle export 1 --format html": ["cycle", "export", "1", "--format", "html"],
    "model validate scoring.yaml": ["model", "validate", "scoring.yaml"],
}
SAMPLES_TODAY = "2026-11-24T18:00Z"  # the sample files' "today" (README tour)
TOUR = [
    ["init", "--sample", "."],
    ["users", "import", "users.csv"],
    ["accounts", "import", "accounts.csv"],
    ["readings", "import", "readings.csv"],
    ["surveys", "import", "surveys.csv"],
    ["issues", "import", "issues.csv"],
    ["--as", "olga", "model", "approve", "scoring.yaml"],
    ["score"],
    ["--as", "bob", "review", "new", "ACME"],
    ["--as", "bob", "review", "fill", "1", "review.yaml"],
    ["--as", "bob", "review", "submit", "1"],
    ["--as", "maria", "review", "approve", "1", "--comment", "Agreed"],
    *(["--as", "bob", "review", "new", account] for account in (
        "GLOBEX", "INITECH", "UMBRELLA", "HOOLI", "STARK", "WAYNE", "SOYLENT", "VANDELAY", "TYRELL", "CYBERDYNE",
        "WONKA",
    )),  # every sample account under review: `review list` lists twelve
    ["--as", "bob", "cycle", "start", "--period", "2026-11"],
    *(["--as", "bob", "cycle", "step", "1", step] for step in ("scope", "data", "model", "trends", "classify")),
]


def build(tour: Path, env: dict[str, str]) -> None:
    """The README tour's state in `tour`, made by the CLI (commit hooks, audit chain, jobs, notices and all)."""
    for args in TOUR:
        done = subprocess.run([PULSECHECK, *args], env={**env, "PULSECHECK_NOW": SAMPLES_TODAY}, cwd=tour,
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"set-up `pulsecheck {' '.join(args)}` failed: {done.stderr.strip()}")


def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tour, bare, cache = Path(tmp, "tour"), Path(tmp, "bare"), Path(tmp, "cache")
        tour.mkdir()
        bare.mkdir()
        database = f"sqlite:///{tour / 'pulsecheck.db'}"
        env = {name: value for name, value in os.environ.items()
               if not name.startswith("PULSECHECK_") and name != "PYTHONDONTWRITEBYTECODE"}
        # The warm-up run writes the byte-code a user's second run reads (site-packages has it from pip already);
        # with PYTHONDONTWRITEBYTECODE inherited, every run would compile pulsecheck again and the floor would not.
        env.update(PULSECHECK_DATABASE_URL=database, XDG_CACHE_HOME=str(cache), XDG_CONFIG_HOME=str(bare / "config"),
                   PULSECHECK_SYSTEM_CONFIG="")
        build(tour, env)
        python = sys.executable
        runs_of: dict[str, tuple[list[str], Path]] = {
            "python -c pass": ([python, "-c", "pass"], tour),
            "import sqlalchemy.orm": ([python, "-c", "import sqlalchemy.orm"], tour),
            **{name: ([PULSECHECK, *args], tour) for name, args in COMMANDS.items()},
            "review show 1 --json, no settings file": ([PULSECHECK, *COMMANDS["review show 1 --json"]], bare),
        }
        changed = "review show 1 --json, settings just changed"
        runs_of[changed] = runs_of["review show 1 --json"]
        samples: dict[str, list[float]] = {name: [] for name in runs_of}
        cpu: dict[str, list[float]] = {name: [] for name in runs_of}  # user + system time of the child
        for argv, cwd in runs_of.values():  # warm the file cache and the byte-code; the settings remembered
            subprocess.run(argv, check=True, capture_output=True, env=env, cwd=cwd)
        for _ in range(runs):  # interleaved, so that a busy moment of the machine hits every figure alike
            for name, (argv, cwd) in runs_of.items():
                if name == changed:  # as after an edit of the file: nothing remembered for it
                    shutil.rmtree(cache, ignore_errors=True)
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                subprocess.run(argv, check=True, capture_output=True, env=env, cwd=cwd)
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
        timed = [name for name in runs_of if name not in ("python -c pass", "import sqlalchemy.orm")]
        for name in timed:
            goal = "-" if name == changed else "<= 1.2x"  # once per edit of the file, not a command's usual cost
            report(f"cold `pulsecheck {name}`", median[name], "ms", floor, goal, floor_label="import sqlalchemy.orm")
        # Wall time on a shared machine is noisy, and drifts between minutes: each command's time over the floor's
        # in the same round (run next to each other), the median over the rounds, is the steadier ratio; CPU time
        # (user + system) another view.
        for name in timed:
            goal = "-" if name == changed else "<= 1.2"
            paired = statistics.median(
                mine / floor for mine, floor in zip(samples[name], samples["import sqlalchemy.orm"], strict=True)
            )
            report(f"cold `pulsecheck {name}` / floor, paired by round", paired, "x", None, goal,
                   note="median over the rounds of its wall time over `import sqlalchemy.orm`'s")
        for name in timed:
            goal = "-" if name == changed else "<= 1.2x"
            report(f"cold `pulsecheck {name}` CPU", cpu_median[name], "ms", cpu_median["import sqlalchemy.orm"],
                   goal, floor_label="import sqlalchemy.orm, CPU")


if __name__ == "__main__":
    main(size_arg(15))
