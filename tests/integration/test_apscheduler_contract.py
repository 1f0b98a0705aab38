"""The APScheduler 3 behaviour pulsecheck relies on, pinned so that an upgrade fails here and not in production.

`pulsecheck/scheduling/store.py` is the one module on APScheduler's internals (its module docstring lists what
it relies on); these tests exercise APScheduler itself, the way that module uses it, against a migrated database.
Expected values are literals and plain datetimes, never computed by pulsecheck.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from inspect import signature
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_ALL, EVENT_JOB_EXECUTED
from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Connection, Float, LargeBinary, Unicode, create_engine, inspect, select, text

from pulsecheck.scheduling import jobs
from pulsecheck.scheduling.triggers import DatesTrigger
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import SchedulerJob

BERLIN = ZoneInfo("Europe/Berlin")  # summer time 2027: from 28 March 02:00 (skipped hour) to 31 October 03:00
STATE_KEYS = {
    "version",
    "id",
    "func",
    "trigger",
    "executor",
    "args",
    "kwargs",
    "name",
    "misfire_grace_time",
    "coalesce",
    "max_instances",
    "next_run_time",
}
DUE = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_database(request: pytest.FixtureRequest) -> Database:
    """A migrated database: a SQLite file, then PostgreSQL when reachable."""
    return request.getfixturevalue("database" if request.param == "sqlite" else "pg_database")  # type: ignore[no-any-return]


def review_job(scheduler: Any, trigger: Any, next_run_time: datetime | None = DUE) -> Job:
    """A job built as store.JobStore builds one: a textual function reference, coalesced, never too late."""
    job = Job(
        scheduler,
        id="review-due:7",
        func="pulsecheck.scheduling.jobs:review_due",
        args=(7, "draft", "2026-12-08T09:00:00+00:00"),
        kwargs={},
        trigger=trigger,
        executor="default",
        name="review 7 due",
        misfire_grace_time=None,
        coalesce=True,
        max_instances=1,
    )
    job._modify(next_run_time=next_run_time)
    return job


class OneConnection:
    """All an SQLAlchemyJobStore may ask of its engine, per store.py: `begin()`, here over one open transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        yield self.connection


# --- the table ------------------------------------------------------------------------------------------------


def test_the_job_store_table_is_our_migrated_table_less_our_spec_column(database: Database):
    theirs = SQLAlchemyJobStore(engine=database.engine).jobs_t  # built, not created: nothing touches the database
    assert theirs.name == SchedulerJob.__table__.name == "apscheduler_jobs"
    assert {c.name: (type(c.type), c.primary_key, c.nullable, bool(c.index)) for c in theirs.columns} == {
        "id": (Unicode, True, False, False),
        "next_run_time": (Float, False, True, True),
        "job_state": (LargeBinary, False, False, False),
    }
    assert (theirs.c.id.type.length, theirs.c.next_run_time.type.precision) == (191, 25)
    ours = SchedulerJob.__table__
    for column in theirs.columns:
        mine = ours.c[column.name]
        assert (type(mine.type), mine.primary_key, mine.nullable, bool(mine.index)) == (
            type(column.type),
            column.primary_key,
            column.nullable,
            bool(column.index),
        )
    assert (ours.c.id.type.length, ours.c.next_run_time.type.precision) == (191, 25)
    # Our one extra column must take APScheduler's own inserts, which leave it out.
    assert set(ours.c.keys()) - set(theirs.c.keys()) == {"spec"} and ours.c.spec.nullable
    migrated = inspect(database.engine)
    assert {c["name"]: c["nullable"] for c in migrated.get_columns("apscheduler_jobs")} == {
        "id": False,
        "next_run_time": True,
        "job_state": False,
        "spec": True,
    }
    assert migrated.get_pk_constraint("apscheduler_jobs")["constrained_columns"] == ["id"]
    assert ["next_run_time"] in [i["column_names"] for i in migrated.get_indexes("apscheduler_jobs")]


def test_binding_a_store_with_the_base_class_start_creates_no_table(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        store = SQLAlchemyJobStore(engine=engine)
        BaseJobStore.start(store, BackgroundScheduler(timezone=UTC), "default")  # how store.JobStore binds one
        assert inspect(engine).get_table_names() == []
        store.start(BackgroundScheduler(timezone=UTC), "default")  # the daemon's start: creates it when missing
        assert inspect(engine).get_table_names() == ["apscheduler_jobs"]
    finally:
        engine.dispose()


# --- the pickled state ----------------------------------------------------------------------------------------


def test_the_state_we_pickle_has_the_keys_and_version_the_job_store_reads():
    trigger = CronTrigger.from_crontab("0 9 * * *", timezone=BERLIN)
    state = review_job(BackgroundScheduler(timezone=BERLIN), trigger).__getstate__()
    assert set(state) == STATE_KEYS
    assert state["version"] == 1
    assert (state["id"], state["func"], state["args"], state["kwargs"]) == (
        "review-due:7",
        "pulsecheck.scheduling.jobs:review_due",
        (7, "draft", "2026-12-08T09:00:00+00:00"),
        {},
    )
    assert (state["coalesce"], state["misfire_grace_time"], state["max_instances"]) == (True, None, 1)
    assert state["next_run_time"] == DUE and state["trigger"] is trigger


@pytest.mark.parametrize(
    "func", ["review_due", "next_review", "escalation_deadline", "cadence", "evaluate", "dispatch_notifications"]
)
def test_a_job_row_the_store_writes_pickles_to_the_bytes_of_apschedulers_own_job(func: str):
    # store.JobStore spells out the state Job.__getstate__ makes (not importing APScheduler's scheduler to make
    # it): for every job function the specs name, the written row must be byte for byte what a Job would give.
    from apscheduler.util import datetime_to_utc_timestamp, ref_to_obj

    from pulsecheck.scheduling.specs import FUNCS, JobSpec
    from pulsecheck.scheduling.store import PICKLE_PROTOCOL, JobStore

    ref = f"{FUNCS}:{func}"
    target = ref_to_obj(ref)  # the reference resolves, as Job's constructor checks
    moments = [DUE, DUE + timedelta(days=2, microseconds=250)]
    args = (7, "draft", "2026-12-08T09:00:00+00:00")[: len(signature(target).parameters)]
    spec = JobSpec(f"{func}:7", ref, args, lambda: DatesTrigger(moments), f"{func} 7")
    for _ in range(2):  # twice: nothing the first row made changes the second
        row = JobStore(None, BERLIN)._row(spec, DUE - timedelta(days=1), {})  # type: ignore[arg-type]
        job = Job(
            BackgroundScheduler(timezone=BERLIN),
            id=spec.id,
            func=ref,
            args=args,
            kwargs={},
            trigger=DatesTrigger(moments),
            executor="default",
            name=spec.name,
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
        )
        job._modify(next_run_time=DUE)
        assert row["job_state"] == pickle.dumps(job.__getstate__(), PICKLE_PROTOCOL)
        assert row["next_run_time"] == datetime_to_utc_timestamp(DUE)


def test_our_utc_timestamp_is_apschedulers():
    from apscheduler.util import datetime_to_utc_timestamp

    from pulsecheck.scheduling.store import utc_timestamp

    for moment in (DUE, datetime(2027, 3, 28, 2, 30, 0, 999999, tzinfo=BERLIN), datetime(1999, 12, 31, 23, 59, 59, 1,
                                                                                              tzinfo=BERLIN)):
        assert utc_timestamp(moment) == datetime_to_utc_timestamp(moment)


def test_a_row_written_as_we_write_it_is_read_back_by_the_job_store(any_database: Database):
    # The state dict spelled out, as rows already stored in production hold it: an upgrade must still read them.
    state = {
        "version": 1,
        "id": "review-due:7",
        "func": "pulsecheck.scheduling.jobs:review_due",
        "trigger": DatesTrigger([DUE, DUE + timedelta(days=2)]),
        "executor": "default",
        "args": (7, "draft", "2026-12-08T09:00:00+00:00"),
        "kwargs": {},
        "name": "review 7 due",
        "misfire_grace_time": None,
        "coalesce": True,
        "max_instances": 1,
        "next_run_time": DUE,
    }
    with any_database.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO apscheduler_jobs (id, next_run_time, job_state) VALUES (:id, :at, :state)"),
            {"id": "review-due:7", "at": DUE.timestamp(), "state": pickle.dumps(state, pickle.HIGHEST_PROTOCOL)},
        )
    store = SQLAlchemyJobStore(engine=any_database.engine)
    store.start(BackgroundScheduler(timezone=BERLIN), "default")  # what the daemon does; no scheduler thread here
    job = store.lookup_job("review-due:7")
    assert job is not None
    assert job.func is jobs.review_due and job.func_ref == "pulsecheck.scheduling.jobs:review_due"
    assert (job.args, job.kwargs, job.name, job.executor) == (
        (7, "draft", "2026-12-08T09:00:00+00:00"),
        {},
        "review 7 due",
        "default",
    )
    assert (job.coalesce, job.misfire_grace_time, job.max_instances) == (True, None, 1)
    assert job.next_run_time == DUE
    assert job.trigger.get_next_fire_time(DUE, DUE) == datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
    # next_run_time is a UTC timestamp compared with <=: due at that very second, not a second before.
    assert [j.id for j in store.get_due_jobs(DUE)] == ["review-due:7"]
    assert store.get_due_jobs(DUE - timedelta(seconds=1)) == []


def test_the_job_store_works_through_begin_alone_inside_one_transaction(database: Database):
    trigger = DatesTrigger([DUE, DUE + timedelta(days=2)])
    with database.engine.connect() as connection:
        transaction = connection.begin()
        store = SQLAlchemyJobStore(engine=OneConnection(connection))
        scheduler = BackgroundScheduler(timezone=UTC)
        BaseJobStore.start(store, scheduler, "default")
        store.add_job(review_job(scheduler, trigger))
        row = connection.execute(select(SchedulerJob.next_run_time, SchedulerJob.spec)).one()
        assert tuple(row) == (DUE.timestamp(), None)  # a UTC timestamp; our column left NULL
        job = store.lookup_job("review-due:7")
        assert job is not None and job.next_run_time == DUE
        job._modify(next_run_time=DUE + timedelta(days=2))
        store.update_job(job)
        assert [j.next_run_time for j in store.get_all_jobs()] == [DUE + timedelta(days=2)]
        assert store.get_due_jobs(DUE + timedelta(days=1)) == []
        assert store.get_next_run_time() == DUE + timedelta(days=2)  # how the daemon knows how long to sleep
        store.remove_job("review-due:7")
        assert store.get_all_jobs() == []
        store.add_job(review_job(scheduler, trigger))
        transaction.rollback()  # everything the store did was in our transaction: rolled back with it
    with database.engine.connect() as connection:
        assert connection.execute(select(SchedulerJob.id)).all() == []


# --- moving a job on ------------------------------------------------------------------------------------------


def test_modify_sets_the_next_run_time_and_nothing_else():
    job = review_job(BackgroundScheduler(timezone=BERLIN), CronTrigger.from_crontab("0 9 * * *", timezone=BERLIN))
    job._modify(next_run_time=datetime(2027, 3, 28, 7, 0, tzinfo=UTC))
    assert job.next_run_time == datetime(2027, 3, 28, 9, 0, tzinfo=BERLIN)  # the same instant
    job._modify(next_run_time=datetime(2027, 3, 28, 9, 0))  # naive: read in the scheduler's time zone
    assert job.next_run_time == datetime(2027, 3, 28, 7, 0, tzinfo=UTC)
    job._modify(next_run_time=None)  # paused
    assert job.next_run_time is None
    with pytest.raises(AttributeError):
        job._modify(next_run_time=DUE, nonsense=1)
    assert job.next_run_time is None  # all or nothing
    assert (job.id, job.args, job.name) == ("review-due:7", (7, "draft", "2026-12-08T09:00:00+00:00"), "review 7 due")


def test_get_run_times_lists_every_missed_firing_oldest_first_across_dst():
    daily = CronTrigger.from_crontab("0 9 * * *", timezone=BERLIN)
    job = review_job(BackgroundScheduler(timezone=BERLIN), daily, datetime(2027, 3, 26, 9, 0, tzinfo=BERLIN))
    missed = job._get_run_times(datetime(2027, 3, 29, 6, 0, tzinfo=UTC))
    assert [t.astimezone(UTC) for t in missed] == [
        datetime(2027, 3, 26, 8, 0, tzinfo=UTC),
        datetime(2027, 3, 27, 8, 0, tzinfo=UTC),
        datetime(2027, 3, 28, 7, 0, tzinfo=UTC),  # 09:00 summer time
    ]
    assert len(job._get_run_times(datetime(2027, 3, 28, 7, 0, tzinfo=UTC))) == 3  # `now` itself included
    assert job._get_run_times(datetime(2027, 3, 26, 7, 59, tzinfo=UTC)) == []
    job._modify(next_run_time=None)
    assert job._get_run_times(datetime(2030, 1, 1, tzinfo=UTC)) == []  # paused: never due


def test_get_run_times_walks_a_date_list_and_stops_at_its_end():
    moments = [DUE, DUE + timedelta(days=2), DUE + timedelta(days=4)]
    job = review_job(BackgroundScheduler(timezone=UTC), DatesTrigger(moments))
    assert job._get_run_times(DUE + timedelta(days=3)) == moments[:2]
    assert job._get_run_times(DUE + timedelta(days=30)) == moments


# --- triggers across DST --------------------------------------------------------------------------------------


def test_a_daily_cron_line_stays_at_nine_on_the_wall_clock_across_both_changes():
    daily = CronTrigger.from_crontab("0 9 * * *", timezone=BERLIN)
    spring = daily.get_next_fire_time(None, datetime(2027, 3, 27, 10, 0, tzinfo=BERLIN))
    autumn = daily.get_next_fire_time(None, datetime(2027, 10, 30, 10, 0, tzinfo=BERLIN))
    assert spring == datetime(2027, 3, 28, 7, 0, tzinfo=UTC)
    assert autumn == datetime(2027, 10, 31, 8, 0, tzinfo=UTC)


def test_a_cron_time_in_the_changing_hour_fires_once_in_spring_and_twice_in_autumn():
    # Known APScheduler 3 behaviour: the jobs are idempotent (dedupe keys, one open review per account), and the
    # defaults (06:00, 09:00) are outside that hour. A change here changes what a 02:30 cadence does.
    # Wall times in the gap or the fold never compare equal across zones (PEP 495): compare them in UTC.
    night = CronTrigger.from_crontab("30 2 * * *", timezone=BERLIN)
    spring = night.get_next_fire_time(None, datetime(2027, 3, 27, 10, 0, tzinfo=BERLIN))
    assert spring.astimezone(UTC) == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # 03:30 summer time: 02:xx is skipped
    first = night.get_next_fire_time(None, datetime(2027, 10, 30, 10, 0, tzinfo=BERLIN))
    second = night.get_next_fire_time(first, first)
    assert [t.astimezone(UTC) for t in (first, second)] == [
        datetime(2027, 10, 31, 0, 30, tzinfo=UTC),  # 02:30 summer time
        datetime(2027, 10, 31, 1, 30, tzinfo=UTC),  # 02:30 winter time, an hour later
    ]
    following = night.get_next_fire_time(second, second)
    assert following.astimezone(UTC) == datetime(2027, 11, 1, 1, 30, tzinfo=UTC)


def test_crontab_weekdays_count_from_monday_so_cadences_name_them():
    # Unlike cron (0 = Sunday), APScheduler 3's from_crontab reads 0 as Monday: specs.CADENCES spell days by name.
    after = datetime(2027, 3, 2, 10, 0, tzinfo=BERLIN)  # a Tuesday
    monday = datetime(2027, 3, 8, 9, 0, tzinfo=BERLIN)
    assert CronTrigger.from_crontab("0 9 * * mon", timezone=BERLIN).get_next_fire_time(None, after) == monday
    assert CronTrigger.from_crontab("0 9 * * 0", timezone=BERLIN).get_next_fire_time(None, after) == monday


def test_equal_triggers_have_equal_reprs_which_fingerprints_hold():
    assert repr(CronTrigger.from_crontab("0 9 1 * *", timezone=BERLIN)) == repr(
        CronTrigger.from_crontab("0 9 1 * *", timezone=BERLIN)
    )
    start = datetime(2000, 1, 1, tzinfo=BERLIN)
    assert repr(IntervalTrigger(seconds=60, start_date=start, timezone=BERLIN)) == repr(
        IntervalTrigger(seconds=60, start_date=start, timezone=BERLIN)
    )
    assert repr(CronTrigger.from_crontab("0 9 1 * *", timezone=BERLIN)) != repr(
        CronTrigger.from_crontab("0 9 2 * *", timezone=BERLIN)
    )


def test_a_date_list_keeps_its_instants_across_dst_and_pickling():
    # Reminders two wall-clock days apart at 23:59, either side of the spring change: 47 hours between them.
    before, after = datetime(2027, 3, 27, 23, 59, tzinfo=BERLIN), datetime(2027, 3, 29, 23, 59, tzinfo=BERLIN)
    trigger = pickle.loads(pickle.dumps(DatesTrigger([after, before])))
    first = trigger.get_next_fire_time(None, datetime(2027, 1, 1, tzinfo=UTC))
    assert first == datetime(2027, 3, 27, 22, 59, tzinfo=UTC)
    assert trigger.get_next_fire_time(first, first) == datetime(2027, 3, 29, 21, 59, tzinfo=UTC)
    assert trigger.get_next_fire_time(datetime(2027, 3, 29, 21, 59, tzinfo=UTC), first) is None


# --- why the daemon does not run jobs through APScheduler's schedulers -----------------------------------------


def add_daily_job_due_long_ago(scheduler: BackgroundScheduler) -> None:
    scheduler.add_job(
        "json:dumps",
        IntervalTrigger(days=1, start_date=datetime(2020, 1, 1, tzinfo=UTC), timezone=UTC),
        args=([],),
        id="daily",
        next_run_time=datetime(2020, 1, 1, tzinfo=UTC),
    )


def stored_next_run(database: Database) -> float | None:
    with database.engine.connect() as connection:
        return connection.execute(select(SchedulerJob.next_run_time).where(SchedulerJob.id == "daily")).scalar_one()


def test_shutdown_moves_due_jobs_on_without_running_them(database: Database, caplog):
    # One reason scheduling.runner runs due jobs itself: after shutting its executor down, APScheduler 3's
    # scheduler thread makes one more pass and moves every due job on, though it cannot submit it.
    scheduler = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(engine=database.engine)}, timezone=UTC)
    events: list[int] = []
    scheduler.add_listener(lambda event: events.append(event.code), EVENT_ALL)
    add_daily_job_due_long_ago(scheduler)
    scheduler.start(paused=True)  # paused: nothing runs until shutdown
    assert stored_next_run(database) == datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    with caplog.at_level(logging.ERROR, logger="apscheduler"):
        scheduler.shutdown(wait=True)
    moved = stored_next_run(database)
    assert moved is not None and moved > datetime.now(UTC).timestamp() - 86400  # skipped to today's firing
    assert EVENT_JOB_EXECUTED not in events
    assert "Error submitting job" in caplog.text
