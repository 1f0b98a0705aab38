"""Running the scheduled jobs: one pass (`scheduler run --once`) or the daemon, behind the leader lock.

A pass takes a `now` (the wall clock, or the clock of cron, a test or a replay) and runs every job due by then
once, coalescing the firings missed while nothing ran; the daemon makes a pass whenever a job falls due, and at
least every POLL seconds (other processes add jobs straight into the table). A job moves on to its next firing
only with its committed work (`jobs.work`, `store.JobStore.advance`): a scheduler killed mid-job leaves the job
due, and the next pass runs it again; so does a conflict (the database busy). A job that fails with any other
error moves on, like one that succeeded, so that it does not fail again at every pass.

Only the leader runs jobs (`leader.LeaderLock`). It checks that it still leads before each job, and its
transactions are fenced with the leadership's epoch; deposed, it drops the jobs still queued in its pass and
goes back to standby. Each start (daemon or pass) first marks failed the evaluation runs whose process died.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from pulsecheck.errors import ConflictError, PulsecheckError, RefusedError
from pulsecheck.scheduling import jobs
from pulsecheck.scheduling.leader import LOCK_KEY, Deposed, LeaderLock, mark_written
from pulsecheck.scheduling.specs import ScheduleSettings
from pulsecheck.scheduling.store import job_store
from pulsecheck.scheduling.sync import SyncReport, reconcile
from pulsecheck.workflow.evaluation import recover_runs

if TYPE_CHECKING:
    from pulsecheck.config import Settings
    from pulsecheck.storage.db import Database

__all__ = ["LOCK_KEY", "Deposed", "LeaderLock", "run_due", "run_forever", "run_once", "runtime", "start"]

DISPATCH = "dispatch-notifications"
BATCH = 200  # due jobs of one kind per transaction: a crash loses at most one batch's work, which runs again
POLL = 1.0  # seconds: the daemon's longest sleep between passes (and between checks that it still leads)
DEPOSED_BACKOFF = 3  # standby polls a deposed leader waits before it competes again
log = logging.getLogger("pulsecheck.scheduler")


@dataclass(frozen=True)
class JobRun:
    """One run of a job: the firing it ran for, how many earlier firings it coalesced, and its one-line result."""

    id: str
    scheduled_for: datetime
    missed: int  # firings coalesced into this run
    result: str
    ok: bool


@dataclass(frozen=True)
class Started:
    """What a scheduler start did: interrupted runs marked failed, then the reconcile."""

    recovered: list[str]
    reconciled: SyncReport


@dataclass(frozen=True)
class Pass:
    """What one `scheduler run --once` did: the start (recovery, reconcile), then the job runs."""

    now: datetime
    reconciled: SyncReport
    runs: list[JobRun]
    recovered: list[str] = field(default_factory=list)


def runtime(database: Database, settings: Settings, clock: Callable[[], datetime] | None = None) -> jobs.Runtime:
    """What jobs run with: the database, the settings parsed once, and the clock (the settings' by default)."""
    return jobs.Runtime(database, settings, ScheduleSettings.from_settings(settings), clock or settings.now)


def start(rt: jobs.Runtime, now: datetime) -> SyncReport:
    """Make the jobs agree with the rows (run at every scheduler start)."""
    return begin(rt, now).reconciled


def begin(rt: jobs.Runtime, now: datetime) -> Started:
    """What every scheduler start does: mark failed the runs whose process died, then reconcile the jobs."""
    with rt.database.transaction() as session:
        recovered = recover_runs(session, now)
    with rt.database.transaction() as session:
        return Started(recovered, reconcile(session, rt.cfg, now))


def run_once(rt: jobs.Runtime) -> Pass:
    """One pass as the leader, at the runtime's clock: start, then run every job due. Refused while another
    scheduler leads. Each job commits its own work as it runs."""
    lock = LeaderLock(rt.database)
    if not lock.acquire():
        raise RefusedError("another scheduler holds the leader lock; not running jobs")
    try:
        now = rt.clock()
        started = begin(rt, now)
        return Pass(now, started.reconciled, run_due(rt, now, lock), started.recovered)
    finally:
        lock.release()


def run_due(
    rt: jobs.Runtime,
    now: datetime,
    leader: LeaderLock | None = None,
    stop: threading.Event | None = None,
    on_run: Callable[[JobRun], None] | None = None,
    max_passes: int = 10,
) -> list[JobRun]:
    """Run every job due by `now` once (missed firings coalesced), including jobs made due by earlier ones.

    With a `leader`, each job runs only while it still leads (Deposed otherwise: the rest are dropped); a set
    `stop` ends the pass between jobs. `on_run(run)` after each job."""
    runs: list[JobRun] = []
    fence = leader.check if leader is not None else None
    jobs.set_runtime(jobs.Runtime(rt.database, rt.settings, rt.cfg, lambda: now, fence))
    try:
        for _ in range(max_passes):
            with rt.database.transaction() as session:
                read = job_store(session, rt.cfg.tz).due_read(now)
            due = read.jobs
            # Jobs of one kind together (soonest first within it), so that they run in batches; dispatch last:
            # a pass delivers what it produced.
            due.sort(key=lambda job: (job.id == DISPATCH, job.func_ref not in jobs.BATCHED, job.func_ref))
            ran = 0
            for group in _groups(due):
                if stop is not None and stop.is_set():
                    return runs
                if leader is not None and not leader.held():
                    raise Deposed(f"lost the leader lock; {len(due) - ran} queued job(s) dropped")
                done = _run_batch(rt, group, now, read.states) if len(group) > 1 else None
                if done is None:  # one job, or a batch that did not commit: each job alone, as before
                    done = [run for job in group if (run := _run(rt, job, now)) is not None]
                ran += len(done)
                runs.extend(done)
                for run in done:
                    if on_run is not None:
                        on_run(run)
            if not ran:
                break
    finally:
        jobs.set_runtime(None)
    return runs


def _groups(due: list[Any]) -> list[list[Any]]:
    """Consecutive due jobs of one batched kind, up to BATCH a group; every other job alone."""
    groups: list[list[Any]] = []
    for job in due:
        last = groups[-1] if groups else None
        if last and job.func_ref in jobs.BATCHED and last[0].func_ref == job.func_ref and len(last) < BATCH:
            last.append(job)
        else:
            groups.append([job])
    return groups


def _run_batch(rt: jobs.Runtime, group: list[Any], now: datetime, states: Mapping[str, bytes]) -> list[JobRun] | None:
    """Run jobs of one kind in one transaction that also moves them on: all count as run when it commits, none
    if it does not. Any error (a job's own, or a conflict at commit) rolls the batch back and returns None: the
    caller then runs each job alone, with the per-job handling of errors."""
    done: list[JobRun] = []
    try:
        with rt.database.transaction() as session:
            store = job_store(session, rt.cfg.tz)
            live = store.current_many(group, states)  # an earlier job of the pass may have removed or replaced some
            ran = [job for job in group if job.id in live]
            rows = jobs.prefetch(session, group[0].func_ref, [tuple(job.args) for job in ran])
            batch = jobs.set_batch(session, rows)
            assert batch is not None
            try:
                if group[0].func_ref in jobs.UNFLUSHED:  # the batch's changes go out in one flush at its commit
                    with session.no_autoflush:
                        done.extend(_run_each(ran, now))
                else:
                    done.extend(_run_each(ran, now))
                batch.finish()  # the batch's notifications, in one multi-row insert
            finally:
                jobs.set_batch(None)
            del rows  # held until here: each job found its row in the session
            store.advance_many(ran, now, {run.id: run.scheduled_for for run in done})
            mark_written(session)  # the job rows are written on the session's connection: fence them too
    except Deposed:
        raise  # nothing committed: the new leader runs them
    except Exception as exc:  # noqa: BLE001 - rolled back whole; each job runs again alone
        log.info("batch of %d %s job(s) rolled back (%s); running them one by one", len(group),
                 group[0].func_ref, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return None
    return done


def _run_each(ran: list[Any], now: datetime) -> list[JobRun]:
    done = []
    for job in ran:
        run_times: list[datetime] = job._get_run_times(now)
        result = str(job.func(*job.args, **job.kwargs))
        done.append(JobRun(job.id, run_times[-1], len(run_times) - 1, result, True))
    return done


def _run(rt: jobs.Runtime, job: Any, now: datetime) -> JobRun | None:
    with rt.database.transaction() as session:
        if not job_store(session, rt.cfg.tz).current(job):
            return None  # an earlier job of this pass removed or replaced it: the next pass sees the new one
    run_times: list[datetime] = job._get_run_times(now)
    claimed: list[bool] = []

    def claim(session: Session) -> None:
        if not claimed:
            job_store(session, rt.cfg.tz).advance(job, now)
            mark_written(session)  # the job row is written on the session's connection: fence it too
            claimed.append(True)

    jobs.set_claim(claim)
    try:
        result, ok = str(job.func(*job.args, **job.kwargs)), True
    except Deposed:
        raise  # its last work did not commit: the new leader runs it
    except ConflictError as exc:  # a passing conflict (the database busy): not done, so it stays due
        return JobRun(job.id, run_times[-1], len(run_times) - 1, f"{job.id}: {exc}; it runs again", False)
    except PulsecheckError as exc:
        result, ok = f"{job.id}: {exc}", False
    except Exception:  # a bug in one job must not stop the others: log it whole, report one line
        log.error("job %s failed:\n%s", job.id, traceback.format_exc())
        result, ok = f"{job.id}: failed: {traceback.format_exc(limit=0).strip()}", False
    finally:
        jobs.set_claim(None)
    if not ok:
        claimed.clear()  # its claim may have rolled back with its work (moving on twice is a no-op: `advance`)
    if not claimed:  # it wrote nothing of its own, or failed: move it on now, so it does not fail at every pass
        with rt.database.transaction() as session:
            claim(session)
    return JobRun(job.id, run_times[-1], len(run_times) - 1, result, ok)


def run_forever(
    rt: jobs.Runtime,
    stop: threading.Event,
    echo: Callable[[str], None],
    standby_poll: float = 1.0,
) -> None:
    """The daemon: wait for the lead, start, then run jobs as they fall due until `stop` is set.

    A leader that is deposed (its PostgreSQL connection died, its lease was taken over) drops its queued jobs and
    goes back to standby."""
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
            lock.release()
        if not stop.is_set():  # deposed: the standbys that kept polling go first, rather than a flapping leader
            stop.wait(DEPOSED_BACKOFF * standby_poll)
    echo("stopped")


def _lead(rt: jobs.Runtime, stop: threading.Event, lock: LeaderLock, echo: Callable[[str], None]) -> None:
    try:
        started = begin(rt, rt.clock())
    except Deposed as exc:
        echo(f"lost the leader lock at start ({exc}): back to standby")
        return
    report = started.reconciled
    took_over = f", took over from {lock.took_over}" if lock.took_over else ""
    echo(
        f"leader: epoch {lock.epoch}{took_over}; {len(report.added)} job(s) added, {len(report.replaced)} repaired, "
        f"{len(report.removed)} removed, {report.kept} kept"
    )
    for line in started.recovered:
        echo(f"{line}: marked failed")
    while not stop.is_set():
        try:
            run_due(rt, rt.clock(), lock, stop, lambda run: echo(f"{run.id}: {'' if run.ok else 'ERROR '}{run.result}"))
        except Deposed as exc:
            echo(f"lost the leader lock ({exc}): back to standby")
            return
        if stop.is_set():
            break
        if not lock.held():
            echo("lost the leader lock (database connection gone or lease taken over): back to standby")
            return
        stop.wait(_pause(rt))
    echo("stopping: the running job is done")


def _pause(rt: jobs.Runtime) -> float:
    """Seconds until the next job falls due, at most POLL."""
    with rt.database.transaction() as session:
        following = job_store(session, rt.cfg.tz).next_due()
    if following is None:
        return POLL
    return max(0.0, min(POLL, (following - rt.clock()).total_seconds()))
