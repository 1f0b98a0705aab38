"""A run left `running` by a process that died is marked failed by the next command, whatever it is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import EvaluationRun
from pulsecheck.workflow.leases import Holder, host_key, wall_clock
from tests.conftest import installed, ok


def _dead_pid() -> int:
    """The pid of a process that ran and was killed with SIGKILL (so it is surely gone)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.send_signal(signal.SIGKILL)
    child.wait()
    return child.pid


def _runs(database: Database) -> list[tuple[str, str | None]]:
    with database.transaction() as session:
        rows = session.execute(select(EvaluationRun.status, EvaluationRun.error).order_by(EvaluationRun.id))
        return [(status, error) for status, error in rows]


def test_a_read_command_after_a_kill_marks_the_run_failed_once(
    database: Database, os_login_admin: str, now: datetime, tmp_path: Path
) -> None:
    dead = _dead_pid()
    holder = Holder(dead, host_key(), "t0ken")  # as the killed process would have recorded itself
    with database.transaction() as session:
        session.add(
            EvaluationRun(started_at=now, as_of=now, accounts=0, firings=0, actions=0, status="running",
                          holder=holder.text, lease_until=wall_clock() + timedelta(minutes=5))
        )  # fmt: skip
    env = {"PULSECHECK_DATABASE_URL": database.url}
    listed = installed("users", "list", cwd=tmp_path, env=env)
    ok(listed)  # its own output, plus one note on stderr
    assert listed.stderr.splitlines() == [
        f"note: run 1 (started {now.isoformat(timespec='seconds')}) was interrupted: process {dead} on "
        f"{os.uname().nodename} is gone: marked failed"
    ]
    assert _runs(database) == [("failed", f"interrupted: process {dead} on {os.uname().nodename} is gone")]
    again = installed("users", "list", cwd=tmp_path, env=env)
    assert ok(again) == listed.stdout and again.stderr == ""  # nothing running: nothing to say or write


def test_a_run_whose_process_lives_is_left_running(
    database: Database, os_login_admin: str, now: datetime, tmp_path: Path
) -> None:
    alive = Holder(os.getpid(), host_key(), "t0ken")
    with database.transaction() as session:
        session.add(
            EvaluationRun(started_at=now, as_of=now, accounts=0, firings=0, actions=0, status="running",
                          holder=alive.text, lease_until=wall_clock() + timedelta(minutes=5))
        )  # fmt: skip
    listed = installed("users", "list", cwd=tmp_path, env={"PULSECHECK_DATABASE_URL": database.url})
    assert ok(listed) and listed.stderr == ""
    assert _runs(database) == [("running", None)]
