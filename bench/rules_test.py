"""`rules test` on the sample rules and their fixtures, beside its floors measured in the same run.

Timed (median of 3):
  cli        `pulsecheck rules test rules.yaml --fixtures DIR`, a fresh process (what CI and a person see)
  in-process the same work without the interpreter start: parse the rules and fixtures, run the cases through
             durable-rules in one worker process, compare
Floors:
  python     `python -c pass`, a fresh process (bare Python)
  help       `pulsecheck --help`, a fresh process (the CLI's cold start)
  worker     start one spawned worker process that imports durable-rules and creates the rulesets (what the
             engine path costs before it evaluates anything)
  plain      the same cases through the plain-Python evaluator (no engine, no process)
N is the number of cases: the sample's cases repeated (default: the sample's own).
Run: .venv/bin/python bench/rules_test.py [N]
"""

from __future__ import annotations

import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from common import report

from pulsecheck.config import load_settings
from pulsecheck.demo import examples_dir
from pulsecheck.rules import durable
from pulsecheck.rules.evaluator import evaluate_plain
from pulsecheck.rules.expectations import run_cases
from pulsecheck.rules.fixtures import fixture_files, load_fixtures
from pulsecheck.rules.language import load_rules_file

SCRIPT = Path(sys.executable).parent / "pulsecheck"
RULES = examples_dir() / "rules.yaml"
SAMPLE = examples_dir() / "rules.tests"


def median(work: Callable[[], object], times: int = 3) -> float:
    took = []
    for _ in range(times):
        started = time.perf_counter()
        work()
        took.append(time.perf_counter() - started)
    return statistics.median(took)


def fixtures(n: int, directory: Path) -> Path:
    """The sample's fixture files, their cases repeated until there are `n` (or the sample itself)."""
    files = fixture_files(SAMPLE)
    cases = load_fixtures(files, load_rules_file(RULES))
    if n <= len(cases):
        return SAMPLE
    for copy in range(-(-n // len(cases))):
        for path in files:
            (directory / f"{copy}-{path.name}").write_text(path.read_text())
    return directory


def main(n: int) -> None:
    settings = load_settings(env={})
    with tempfile.TemporaryDirectory() as tmp:
        directory = fixtures(n, Path(tmp))
        rules = load_rules_file(RULES)
        cases = load_fixtures(fixture_files(directory), rules)

        def in_process() -> None:
            parsed = load_rules_file(RULES)
            outcomes = run_cases(parsed, load_fixtures(fixture_files(directory), parsed), settings.priority_matrix())
            assert all(outcome.passed for outcome in outcomes)

        def cli() -> None:
            done = subprocess.run([str(SCRIPT), "rules", "test", str(RULES), "--fixtures", str(directory)],
                                  capture_output=True, text=True, check=False)  # fmt: skip
            assert done.returncode == 0, done.stderr

        def worker() -> None:
            context = multiprocessing.get_context("spawn")
            shards = durable.compile_rules(rules)
            with ProcessPoolExecutor(1, mp_context=context, initializer=durable.init_worker, initargs=(shards,)) as p:
                p.submit(int).result()

        facts = [(i, dict(case.facts)) for i, case in enumerate(cases, 1)]
        figures = [
            ("rules test (cli, fresh process)", median(cli)),
            ("rules test (in-process)", median(in_process)),
            ("floor: python -c pass", median(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))),
            ("floor: pulsecheck --help", median(lambda: subprocess.run([str(SCRIPT), "--help"], capture_output=True))),
            ("floor: one durable-rules worker", median(worker)),
            ("floor: plain evaluator", median(lambda: evaluate_plain(rules.rules, facts))),
        ]
    print(f"{len(cases)} case(s) of {RULES.name}")
    cli_time, in_process_time = figures[0][1], figures[1][1]
    for name, took in figures:
        print(f"{name:<36} {took:8.3f} s")
    print(f"{'ratio cli / pulsecheck --help':<36} {cli_time / figures[3][1]:8.1f}x")
    print(f"{'ratio in-process / one worker':<36} {in_process_time / figures[4][1]:8.1f}x")
    print(f"{'goal':<36} {'none set (issue 16 asks for the figure)'}")
    note = f"{len(cases)} case(s); no goal set (issue 16 asks for the figure)"
    report("rules test (cli, fresh process)", cli_time, "s", figures[3][1], "-", floor_label="pulsecheck --help",
           note=note)
    report("rules test (in-process)", in_process_time, "s", figures[4][1], "-",
           floor_label="one durable-rules worker", note=note)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
