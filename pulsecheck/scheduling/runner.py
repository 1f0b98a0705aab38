"""Running the scheduled jobs: one pass (`scheduler run --once`) or the daemon, behind a leader lock.

The daemon is APScheduler's BackgroundScheduler over the SQLAlchemy job store in the project database, one job
at a time. A pass with `--once` takes a `now` (the clock of cron, a test or a replay) and runs every job due by
then exactly once, coalescing the firings missed while nothing ran: the same computation APScheduler makes
(`Job._get_run_times`), except that the job is moved to its next time before it runs, so that a job which
changes its own rows never races its own bookkeeping.

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

from pulsecheck.errors import PulsecheckError
from pulsecheck.scheduling import jobs
from pulsecheck.scheduling.sync import ScheduleSettings, SyncReport, job_store, reconcile

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
    id: str
    scheduled_for: datetime
    missed: int  # firings coalesced into this run
    result: str
    ok: bool


def runtime(database: Database, settings: Settings, clock: Callable[[], datetime] | None = None) -> jobs.Runtime:
    return jobs.Runtime(database, settings, ScheduleSettings.from_settings(settings), clock or settings.now)


def start(rt: jobs.Runtime, now: datetime) -> SyncReport:
    """Make the jobs agree with the rows (run at every scheduler start)."""
    with rt.database.transaction() as session:
        return reconcile(session, rt.cfg, now)


def run_due(rt: jobs.Runtime, now: datetime, max_passes: int = 10) -> list[JobRun]:
    """Run every job due by `now` once (missed firings coalesced), including jobs made due by earlier ones."""
    runs: list[JobRun] = []
    jobs.set_runtime(jobs.Runtime(rt.database, rt.settings, rt.cfg, lambda: now))
    try:
        for _ in range(max_passes):
            with rt.database.transaction() as session:
                due = job_store(session, rt.cfg.tz).get_due_jobs(now)
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
    run_times = job._get_run_times(now)
    with rt.database.transaction() as session:  # move the job on first: it never runs twice for one firing
        store = job_store(session, rt.cfg.tz)
        current = store.lookup_job(job.id)
        if current is None or _fingerprint(current) != _fingerprint(job):
            return None  # an earlier job of this pass removed or replaced it: the next pass sees the new one
        following = job.trigger.get_next_fire_time(run_times[-1], now)
        if following is None:
            store.remove_job(job.id)
        else:
            job._modify(next_run_time=following)
            store.update_job(job)
    try:
        result, ok = str(job.func(*job.args, **job.kwargs)), True
    except PulsecheckError as exc:
        result, ok = f"{job.id}: {exc}", False
    except Exception:  # a bug in one job must not stop the others: log it whole, report one line
        log.error("job %s failed:\n%s", job.id, traceback.format_exc())
        result, ok = f"{job.id}: failed: {traceback.format_exc(limit=0).strip()}", False
    return JobRun(job.id, run_times[-1], len(run_times) - 1, result, ok)


def _fingerprint(job: Any) -> tuple[Any, ...]:
    return job.func_ref, tuple(job.args), repr(job.trigger), job.next_run_time


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
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    report = start(rt, rt.clock())
    echo(
        f"leader: {len(report.added)} job(s) added, {len(report.replaced)} repaired, "
        f"{len(report.removed)} removed, {report.kept} kept"
    )
    jobs.set_runtime(rt)
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=rt.database.engine)},
        executors={"default": ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        timezone=rt.cfg.tz,
    )

    def report_run(event: JobExecutionEvent) -> None:
        echo(f"{event.job_id}: {event.retval}" if event.exception is None else f"{event.job_id}: {event.exception}")

    scheduler.add_listener(report_run, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.start()
    # Other processes add jobs straight into the table; wake up regularly to see them.
    poll = min(rt.cfg.dispatch_every, LOCK_CHECK).total_seconds()
    while not stop.wait(poll):
        if not lock.held():
            echo("lost the leader lock (database connection gone): stopping jobs, back to standby")
            scheduler.shutdown(wait=True)
            return
        scheduler.wakeup()
    echo("stopping: waiting for the running job")
    scheduler.shutdown(wait=True)
