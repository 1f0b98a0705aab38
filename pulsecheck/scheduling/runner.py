"""Running the scheduled jobs: one pass (`scheduler run --once`) or the daemon, behind a leader lock.

The daemon is APScheduler's BackgroundScheduler over the SQLAlchemy job store in the project database, one job
at a time (`store.daemon_scheduler`). A pass with `--once` takes a `now` (the clock of cron, a test or a replay)
and runs every job due by then exactly once, coalescing the firings missed while nothing ran: the same
computation APScheduler makes, except that the job is moved to its next time before it runs
(`store.JobStore.claim`), so that a job which changes its own rows never races its own bookkeeping.

Only one process runs jobs at a time: a PostgreSQL advisory lock (released by the server when the holder's
connection dies), or an exclusive file lock next to a SQLite database.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import text

from pulsecheck.errors import PulsecheckError, RefusedError
from pulsecheck.scheduling import jobs
from pulsecheck.scheduling.specs import ScheduleSettings
from pulsecheck.scheduling.store import daemon_scheduler, job_store, stop_daemon
from pulsecheck.scheduling.sync import SyncReport, reconcile

if TYPE_CHECKING:
    from pulsecheck.config import Settings
    from pulsecheck.storage.db import Database

LOCK_KEY = 0x70756C73  # "puls": with the schema, the advisory lock that schedulers of one database compete for
DISPATCH = "dispatch-notifications"
LOCK_CHECK = timedelta(seconds=5)  # how often a leader checks that it still holds the lock
log = logging.getLogger("pulsecheck.scheduler")


class LeaderLock:
    """Held by the one scheduler that runs jobs; others wait as standby."""

    def __init__(self, database: Database) -> None:
        self.engine = database.engine
        self._connection: Any = None
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; False (at once, without waiting) if another scheduler does."""
        if self._connection is not None or self._file is not None:
            return True
        if self.engine.dialect.name == "postgresql":
            connection = self.engine.connect()
            held = connection.execute(
                text("SELECT pg_try_advisory_lock(:key, hashtext(current_schema()))"), {"key": LOCK_KEY}
            ).scalar()
            connection.commit()
            if held:
                self._connection = connection
            else:
                connection.close()
            return bool(held)
        path = self.engine.url.database
        if not path or path == ":memory:":
            return True
        import fcntl

        handle = Path(f"{path}.scheduler.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def held(self) -> bool:
        """Still ours? A PostgreSQL session lock dies with its connection."""
        if self._connection is None:
            return self._file is not None or self.engine.dialect.name != "postgresql"
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
        except Exception:  # noqa: BLE001 - any failure of the lock's connection means the lock is gone
            self._connection.invalidate()
            self._connection = None
            return False
        return True

    def release(self) -> None:
        """Give the lock up (a no-op when not held)."""
        if self._connection is not None:
            try:
                self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key, hashtext(current_schema()))"), {"key": LOCK_KEY}
                )
                self._connection.commit()
            finally:
                self._connection.close()
                self._connection = None
        if self._file is not None:
            self._file.close()  # closing the file drops the flock
            self._file = None


@dataclass(frozen=True)
class JobRun:
    """One run of a job: the firing it ran for, how many earlier firings it coalesced, and its one-line result."""

    id: str
    scheduled_for: datetime
    missed: int  # firings coalesced into this run
    result: str
    ok: bool


@dataclass(frozen=True)
class Pass:
    """What one `scheduler run --once` did: the reconcile at its start, then the job runs."""

    now: datetime
    reconciled: SyncReport
    runs: list[JobRun]


def runtime(database: Database, settings: Settings, clock: Callable[[], datetime] | None = None) -> jobs.Runtime:
    """What jobs run with: the database, the settings parsed once, and the clock (the settings' by default)."""
    return jobs.Runtime(database, settings, ScheduleSettings.from_settings(settings), clock or settings.now)


def start(rt: jobs.Runtime, now: datetime) -> SyncReport:
    """Make the jobs agree with the rows (run at every scheduler start)."""
    with rt.database.transaction() as session:
        return reconcile(session, rt.cfg, now)


def run_once(rt: jobs.Runtime) -> Pass:
    """One pass behind the leader lock, at the runtime's clock: reconcile, then run every job due. Refused while
    another scheduler holds the lock. Each job commits its own work as it runs."""
    lock = LeaderLock(rt.database)
    if not lock.acquire():
        raise RefusedError("another scheduler holds the leader lock; not running jobs")
    try:
        now = rt.clock()
        return Pass(now, start(rt, now), run_due(rt, now))
    finally:
        lock.release()


def run_due(rt: jobs.Runtime, now: datetime, max_passes: int = 10) -> list[JobRun]:
    """Run every job due by `now` once (missed firings coalesced), including jobs made due by earlier ones."""
    runs: list[JobRun] = []
    jobs.set_runtime(jobs.Runtime(rt.database, rt.settings, rt.cfg, lambda: now))
    try:
        for _ in range(max_passes):
            with rt.database.transaction() as session:
                due = job_store(session, rt.cfg.tz).due(now)
            due.sort(key=lambda job: job.id == DISPATCH)  # last: a pass delivers what it produced
            if not due:
                break
            done = [run for run in (_run(rt, job, now) for job in due) if run is not None]
            runs.extend(done)
            if not done:
                break
    finally:
        jobs.set_runtime(None)
    return runs


def _run(rt: jobs.Runtime, job: Any, now: datetime) -> JobRun | None:
    with rt.database.transaction() as session:  # move the job on first: it never runs twice for one firing
        run_times = job_store(session, rt.cfg.tz).claim(job, now)
    if run_times is None:
        return None  # an earlier job of this pass removed or replaced it: the next pass sees the new one
    try:
        result, ok = str(job.func(*job.args, **job.kwargs)), True
    except PulsecheckError as exc:
        result, ok = f"{job.id}: {exc}", False
    except Exception:  # a bug in one job must not stop the others: log it whole, report one line
        log.error("job %s failed:\n%s", job.id, traceback.format_exc())
        result, ok = f"{job.id}: failed: {traceback.format_exc(limit=0).strip()}", False
    return JobRun(job.id, run_times[-1], len(run_times) - 1, result, ok)


def run_forever(
    rt: jobs.Runtime,
    stop: threading.Event,
    echo: Callable[[str], None],
    standby_poll: float = 2.0,
) -> None:
    """The daemon: wait for the leader lock, reconcile, then run jobs on the wall clock until `stop` is set.

    A leader that loses its lock (its PostgreSQL connection died) stops running jobs and goes back to standby.
    """
    lock = LeaderLock(rt.database)
    while not stop.is_set():
        waiting = False
        while not lock.acquire():
            if not waiting:
                echo("standby: another scheduler holds the leader lock; waiting")
                waiting = True
            if stop.wait(standby_poll):
                echo("stopped")
                return
        try:
            _lead(rt, stop, lock, echo)
        finally:
            jobs.set_runtime(None)
            lock.release()
    echo("stopped")


def _lead(rt: jobs.Runtime, stop: threading.Event, lock: LeaderLock, echo: Callable[[str], None]) -> None:
    report = start(rt, rt.clock())
    echo(
        f"leader: {len(report.added)} job(s) added, {len(report.replaced)} repaired, "
        f"{len(report.removed)} removed, {report.kept} kept"
    )
    jobs.set_runtime(rt)
    scheduler = daemon_scheduler(rt.database.engine, rt.cfg.tz, lambda job_id, outcome: echo(f"{job_id}: {outcome}"))
    scheduler.start()
    # Other processes add jobs straight into the table; wake up regularly to see them.
    poll = min(rt.cfg.dispatch_every, LOCK_CHECK).total_seconds()
    while not stop.wait(poll):
        if not lock.held():
            echo("lost the leader lock (database connection gone): stopping jobs, back to standby")
            stop_daemon(scheduler)
            return
        scheduler.wakeup()
    echo("stopping: waiting for the running job")
    stop_daemon(scheduler)
