"""The durable-rules worker processes die with the process that started them, even when it is killed -9 in the
middle of the rules stage (they used to keep computing for over a minute)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pulsecheck.workflow.leases import pid_alive

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Enough accounts that the workers are still busy when their parent dies (about a minute on two cores).
ENGINE_STAGE = textwrap.dedent(
    f"""
    import random
    from pulsecheck.rules import durable
    from pulsecheck.rules.language import load_rules_file

    rules = load_rules_file({str(EXAMPLES / "rules.yaml")!r})
    rnd = random.Random(1)
    facts = [
        (i, {{"score": rnd.uniform(0, 100), "open_complaints": rnd.randint(0, 3)}})
        for i in range(1_000_000)
    ]
    durable.evaluate(rules, facts, workers=2)
    """
)


def workers_of(parent: int) -> list[int]:
    """The spawned multiprocessing workers whose parent is `parent` (not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == parent and "spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_the_parent_in_the_rules_stage_takes_its_workers_with_it():
    parent = subprocess.Popen([sys.executable, "-c", ENGINE_STAGE], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while len(workers) < 2:  # poll until both workers run
            assert parent.poll() is None, parent.stderr.read() if parent.stderr else ""
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.05)
            workers = workers_of(parent.pid)
        time.sleep(0.5)  # let them take their first chunks
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        killed = time.monotonic()
        while any(pid_alive(pid) for pid in workers) and time.monotonic() - killed < 10:
            time.sleep(0.05)
        survivors = [pid for pid in workers if pid_alive(pid)]
        assert survivors == [], f"workers {survivors} outlived their parent by 10 s"
        gone_after = time.monotonic() - killed
        print(f"{len(workers)} workers gone {gone_after:.2f} s after their parent was killed")  # shown with -s
        assert gone_after < 3
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in workers_of(parent.pid):
            os.kill(pid, signal.SIGKILL)
