"""The one adapter to APScheduler: its job store, its jobs and its daemon scheduler.

This is the only module that touches APScheduler's internals. Commands never run a scheduler: a transaction
writes its jobs into APScheduler's table itself, through the SQLAlchemy job store run over the session's own
connection, so that jobs change exactly when their rows commit. What that relies on in APScheduler 3, pinned by
tests/integration/test_apscheduler_contract.py so that an upgrade fails there first:

- the SQLAlchemy job store reaches its database only through `engine.begin()`, so a stand-in yielding the
  session's connection works; `BaseJobStore.start` binds it to a scheduler without creating its table (ours
  comes from our migrations, with the same columns plus our `spec`);
- a job is stored as `pickle.dumps(job.__getstate__())` in `job_state` and its next run as a UTC timestamp;
  the store unpickles exactly that, so jobs written here are read by the daemon and vice versa (a transaction
  writes that state dict spelled out, keys in Job's order, with no Job made: the same bytes);
- `Job._modify(next_run_time=...)` sets a job's next firing; `Job._get_run_times(now)` lists every firing due
  by `now`, oldest first (a coalesced run covers them all).

APScheduler's own schedulers are not used to run jobs: BackgroundScheduler moves a job on to its next firing
before the job runs (a kill mid-job loses the firing) and queues due jobs in its executor where a deposed leader
cannot drop them. `scheduling.runner` runs the due jobs itself, and moves each on only with its committed work.
"""

from __future__ import annotations

import copyreg
import pickle
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from pulsecheck.scheduling.listing import JobRow
from pulsecheck.storage.bulk import among, execute_many
from pulsecheck.storage.models import SchedulerJob
from pulsecheck.storage.tables import APSCHEDULER_JOBS
from pulsecheck.timeutil import UTC_EPOCH

if TYPE_CHECKING:
    from apscheduler.job import Job

    from pulsecheck.scheduling.specs import JobSpec

PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL  # what SQLAlchemyJobStore writes and reads by default


def _reduce_timezone(zone: timezone) -> tuple[Any, ...]:
    """What `zone.__reduce_ex__` gives (tzinfo's reduce: the class, its arguments, no state), without what CPython
    does on the way: it asks `copyreg._slotnames` for the built-in type's slot names, which tries to cache them on
    the type, fails and swallows the error, at every pickle of a timezone (every job's next run time is UTC-aware;
    a sixth of a job row's pickling). Registered for the process (`copyreg.pickle`): the same value, so every pickle
    and copy of a timezone is unchanged (tests/integration/test_job_rows.py)."""
    return timezone, zone.__getinitargs__(), None  # type: ignore[attr-defined]


copyreg.pickle(timezone, _reduce_timezone)
BATCH = 500  # ids per IN (...) list: well under every database's limit on bound parameters


class _SessionBind:
    """Looks like an Engine to APScheduler's job store, but runs every statement in one session's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.url = session.get_bind().engine.url  # the store's repr names it

    @contextmanager
    def begin(self) -> Iterator[Any]:
        yield self.session.connection()


@lru_cache(maxsize=8)
def _lender(tz: ZoneInfo) -> Any:
    """A never-started APScheduler scheduler that lends jobs its time zone: built once per zone, since building
    one (executors, locks, a thread pool's set-up) costs more than a commit hook's whole work."""
    from apscheduler.schedulers.background import BackgroundScheduler

    return BackgroundScheduler(timezone=tz)


class JobStore:
    """APScheduler's SQLAlchemy job store working inside one session's transaction (made at first use: a
    commit that only removes jobs, or writes none, never needs it)."""

    def __init__(self, session: Session, tz: ZoneInfo) -> None:
        self.session = session
        self.tz = tz

    @property
    def scheduler(self) -> Any:
        return _lender(self.tz)

    @cached_property
    def store(self) -> Any:
        from apscheduler.jobstores.base import BaseJobStore
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

        store = SQLAlchemyJobStore(engine=_SessionBind(self.session))
        # The base class's start binds the store to the scheduler; SQLAlchemyJobStore.start would also create
        # the table, which our migrations own.
        BaseJobStore.start(store, self.scheduler, "default")
        return store

    def due(self, now: datetime) -> list[Job]:
        """The jobs whose next run time is `now` or earlier, soonest first."""
        return self.due_read(now).jobs

    def due_read(self, now: datetime) -> DueJobs:
        """`due`, with each job's stored state as read (for `current_many`): APScheduler's `get_due_jobs` (the
        same query, and a job that cannot be restored is logged and removed the same way), keeping the bytes."""
        from apscheduler.util import datetime_to_utc_timestamp

        store, table = self.store, APSCHEDULER_JOBS
        query = select(table.c.id, table.c.job_state).where(table.c.next_run_time <= datetime_to_utc_timestamp(now))
        read = DueJobs([], {})
        failed = []
        for job_id, state in self.session.connection().execute(query.order_by(table.c.next_run_time)).all():
            try:
                read.jobs.append(store._reconstitute_job(state))
            except BaseException:  # as APScheduler's store does: the job is lost, said so, and gone
                store._logger.exception('Unable to restore job "%s" -- removing it', job_id)
                failed.append(job_id)
                continue
            read.states[job_id] = bytes(state)
        self.remove(failed)
        return read

    def all(self) -> list[Job]:
        """Every stored job, soonest first, paused ones last."""
        return cast("list[Job]", self.store.get_all_jobs())

    def write(self, specs: Sequence[JobSpec], now: datetime, *, new: bool) -> None:
        """Insert (`new`) or overwrite the jobs of `specs` in bulk, each with its fingerprint beside it; a job's
        first run is its trigger's first firing, even if that is already past (a past due date is due now)."""
        if not specs:
            return
        made: dict[tuple[Any, ...], tuple[list[float], datetime | None]] = {}  # dates and first run, per key
        rows = [self._row(spec, now, made) for spec in specs]
        execute_many(self.session, _INSERT if new else _UPDATE, rows)  # built once: its SQL is kept by it

    def upsert(self, specs: Sequence[JobSpec], now: datetime) -> None:
        """Write the jobs of `specs` in one keyed statement with no read first: a missing job is inserted, one
        whose stored fingerprint differs is overwritten, one already right is left as it is (its next run time
        kept), as `sync.apply` would decide after reading the fingerprints. For a transaction's few jobs (on SQLite
        its compiled SQL goes to the DBAPI cursor, as `write`'s: `storage.bulk.execute_many`)."""
        if specs:
            made: dict[tuple[Any, ...], tuple[list[float], datetime | None]] = {}
            execute_many(self.session, _upsert(self.session), [self._row(spec, now, made) for spec in specs])

    def delete(self, ids: Sequence[str]) -> None:
        """Delete the jobs of `ids` that exist, one keyed statement (executemany, as `upsert`) with no read first."""
        if ids:
            execute_many(self.session, _DELETE, [{"job_id": job_id} for job_id in ids])

    def remove(self, ids: Sequence[str]) -> None:
        """Delete the jobs of `ids` (in batches)."""
        for start in range(0, len(ids), BATCH):
            self.session.execute(delete(SchedulerJob).where(among(SchedulerJob.id, values=ids[start : start + BATCH])))

    def current(self, job: Job) -> bool:
        """Whether the stored job is still `job` (an earlier job of the same pass may have removed or replaced it)."""
        stored = self.store.lookup_job(job.id)
        return stored is not None and _identity(stored) == _identity(job)

    def advance(self, job: Job, now: datetime) -> None:
        """Move a job that ran on to its first firing after `now`, or remove it if it has none. Called in the
        transaction of the job's work (or after it committed), never before: a job killed mid-way stays due and
        runs again. A job its own work removed or replaced is left as that work wrote it."""
        if not self.current(job):
            return
        following = job.trigger.get_next_fire_time(job._get_run_times(now)[-1], now)
        if following is None:
            self.store.remove_job(job.id)
        else:
            job._modify(next_run_time=following)
            self.store.update_job(job)

    def current_many(self, due: Sequence[Job], states: Mapping[str, bytes] | None = None) -> set[str]:
        """The ids of the jobs in `due` whose stored job is still that job, read in a few queries. With the
        `states` the jobs were read from (`due_read`), a stored state that has not changed since is the same job
        (compared as bytes, nothing unpickled); any other is unpickled and compared."""
        wanted = {job.id: job for job in due}
        states = states or {}
        listed, found = list(wanted), set()
        table = APSCHEDULER_JOBS
        for start in range(0, len(listed), BATCH):
            query = select(table.c.id, table.c.job_state).where(among(table.c.id, values=listed[start : start + BATCH]))
            for job_id, state in self.session.connection().execute(query).all():
                if states.get(job_id) == state or (
                    _identity(self.store._reconstitute_job(state)) == _identity(wanted[job_id])
                ):
                    found.add(job_id)
        return found

    def advance_many(self, ran: Sequence[Job], now: datetime, last: Mapping[str, datetime] | None = None) -> None:
        """`advance` for jobs that ran in this transaction and were current when it began: moved on in one
        statement (executemany), those with no firing left removed in another. `last`: the firing each job ran
        for, by id, when the caller has it (else worked out again)."""
        from apscheduler.util import datetime_to_utc_timestamp

        moved, done = [], []
        last = last or {}
        for job in ran:
            fired = last.get(job.id) or job._get_run_times(now)[-1]
            following = job.trigger.get_next_fire_time(fired, now)
            if following is None:
                done.append(job.id)
                continue
            job._modify(next_run_time=following)
            moved.append({"job_id": job.id, "next_run_time": datetime_to_utc_timestamp(following),
                          "job_state": pickle.dumps(job.__getstate__(), PICKLE_PROTOCOL)})
        if moved:
            table = APSCHEDULER_JOBS
            statement = table.update().where(table.c.id == bindparam("job_id"))
            self.session.execute(statement.values(next_run_time=bindparam("next_run_time")), moved)  # as `write`
        self.remove(done)

    def next_due(self) -> datetime | None:
        """The soonest next run time of any stored job (None: no job is scheduled)."""
        return cast("datetime | None", self.store.get_next_run_time())

    def _row(
        self, spec: JobSpec, now: datetime, made: dict[tuple[Any, ...], tuple[list[float], datetime | None]]
    ) -> dict[str, Any]:
        from pulsecheck.scheduling.triggers import DatesTrigger

        # A job's first run is its trigger's first firing (an aware datetime: APScheduler keeps it as is). Specs
        # with the same key fire at the same dates (the key is what they are computed from): a batch of jobs made
        # at one moment computes a few date lists, each once.
        key = None if spec.key is None else (spec.func, spec.key)
        found = made.get(key) if key is not None else None
        if found is None:
            trigger = spec.make_trigger()
            first = trigger.get_next_fire_time(None, now)
            if key is not None and isinstance(trigger, DatesTrigger):
                made[key] = (trigger.stamps, first)
        else:
            trigger, first = DatesTrigger.of_stamps(found[0], spec.key), found[1]
        # The stored state (`Job.__getstate__`) as APScheduler's Job makes it for our jobs, spelled out in its keys'
        # order (the pickled bytes are the same): making it through a Job would import APScheduler's scheduler
        # machinery and the job functions' module into every command that moves a job (tens of milliseconds).
        # tests/integration/test_apscheduler_contract.py pins it to what Job makes.
        state = {
            "version": 1,
            "id": spec.id,
            "func": spec.func,  # a textual reference (module:function), as Job keeps it
            "trigger": trigger,
            "executor": "default",
            "args": tuple(spec.args),
            "kwargs": {},
            "name": spec.name,
            "misfire_grace_time": None,  # a job missed while nothing ran still runs, once (coalesced)
            "coalesce": True,
            "max_instances": 1,
            "next_run_time": first,
        }
        return {
            "job_id": spec.id,
            "next_run_time": None if first is None else utc_timestamp(first),
            "job_state": pickle.dumps(state, PICKLE_PROTOCOL),
            "spec": spec.fingerprint,
        }


def utc_timestamp(moment: datetime) -> float:
    """`apscheduler.util.datetime_to_utc_timestamp` of an aware datetime (the same float, by the same sum), without
    importing APScheduler: how a job's next run time is stored. Its whole seconds since the epoch are counted by
    timedelta arithmetic rather than `calendar.timegm(moment.utctimetuple())`: the same integer, without a struct
    time and timegm's Python (a UTC moment, as a trigger's next firing is, is subtracted with no offset asked)."""
    return (moment - UTC_EPOCH) // _SECOND + moment.microsecond / 1000000


_SECOND = timedelta(seconds=1)


_INSERT = APSCHEDULER_JOBS.insert().values(id=bindparam("job_id"), next_run_time=bindparam("next_run_time"))
_UPDATE = (
    APSCHEDULER_JOBS.update()
    .where(APSCHEDULER_JOBS.c.id == bindparam("job_id"))
    .values(next_run_time=bindparam("next_run_time"))
)
_DELETE = APSCHEDULER_JOBS.delete().where(APSCHEDULER_JOBS.c.id == bindparam("job_id"))
_UPSERTS: dict[str, Any] = {}  # per dialect: INSERT ... ON CONFLICT DO UPDATE, built once


def _upsert(session: Session) -> Any:
    """Insert a job, or overwrite the stored one only where its fingerprint (`spec`) differs."""
    dialect = session.get_bind().dialect.name
    if dialect not in _UPSERTS:
        from pulsecheck.storage.bulk import upsert

        statement = upsert(session, SchedulerJob).values(
            id=bindparam("job_id"), next_run_time=bindparam("next_run_time")
        )
        excluded = statement.excluded
        _UPSERTS[dialect] = statement.on_conflict_do_update(
            index_elements=[APSCHEDULER_JOBS.c.id],
            set_={"next_run_time": excluded.next_run_time, "job_state": excluded.job_state, "spec": excluded.spec},
            where=APSCHEDULER_JOBS.c.spec.is_distinct_from(excluded.spec),
        )
    return _UPSERTS[dialect]


@dataclass(frozen=True)
class DueJobs:
    """The due jobs, soonest first, and each one's stored state (pickled) as it was read, by id."""

    jobs: list[Job]
    states: dict[str, bytes]


def _identity(job: Job) -> tuple[Any, ...]:
    return job.func_ref, tuple(job.args), repr(job.trigger), job.next_run_time


def job_store(session: Session, tz: ZoneInfo) -> JobStore:
    """The job store inside `session`'s transaction; job times are read in the time zone `tz`."""
    return JobStore(session, tz)


def fingerprints(session: Session, ids: Collection[str] | None = None) -> dict[str, str | None]:
    """The stored jobs' fingerprints (all, or those among `ids`), read in a few queries without unpickling."""
    query = select(SchedulerJob.id, SchedulerJob.spec)
    if ids is None:  # every job (a scheduler start): Core rows, no ORM loading per row
        return {job_id: spec for job_id, spec in session.connection().execute(query).all()}
    found: dict[str, str | None] = {}
    listed = list(ids)
    for start in range(0, len(listed), BATCH):
        rows = session.execute(query.where(among(SchedulerJob.id, values=listed[start : start + BATCH])))
        found.update({job_id: spec for job_id, spec in rows})
    return found


def list_jobs(session: Session, tz: ZoneInfo) -> list[JobRow]:
    """The stored jobs with their next run time (None: paused) and a readable trigger, soonest first."""
    return [JobRow(job.id, job.name, job.next_run_time, str(job.trigger)) for job in job_store(session, tz).all()]
