"""A job row as the commit hook writes it (`store.JobStore._row` of a spec of `specs`) holds byte for byte the state
APScheduler's own Job pickles, its next run time as APScheduler's UTC timestamp and the fingerprint formatted from
what the job is made from: for any review, due date, day, time zone and reminder settings. The row is made without
APScheduler (its state spelled out, its dates and timestamps worked out by `specs`, `triggers` and `store`); the
expected values here are made by APScheduler from plain datetimes (test_apscheduler_contract.py pins the same for a
few literal jobs)."""

from __future__ import annotations

import copy
import copyreg
import pickle
from datetime import UTC, date, datetime, time, timedelta, timezone
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.util import datetime_to_utc_timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from pulsecheck.scheduling.specs import ScheduleSettings, next_review_job, review_due_job
from pulsecheck.scheduling.store import JobStore, _reduce_timezone, utc_timestamp
from pulsecheck.scheduling.triggers import DatesTrigger

# Whole-hour and half-hour offsets, both hemispheres' summer times, a 30-minute DST change (Lord Howe).
ZONES = [ZoneInfo(name) for name in ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata",
                                     "Australia/Lord_Howe", "Pacific/Chatham", "America/Santiago")]
SCHEDULERS: dict[ZoneInfo, BackgroundScheduler] = {}  # never started: a Job only asks it for its time zone

zones = st.sampled_from(ZONES)
moments = st.datetimes(datetime(1990, 1, 1), datetime(2090, 1, 1), timezones=st.sampled_from([UTC, *ZONES]))


def expected_row(func: str, job_id: str, args: tuple[Any, ...], name: str, moments: list[datetime],
                 key: tuple[Any, ...], now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """The row of a date-list job as APScheduler makes its state, from the dates as plain datetimes."""
    trigger = DatesTrigger(moments, key)
    scheduler = SCHEDULERS.setdefault(tz, BackgroundScheduler(timezone=tz))
    job = Job(scheduler, id=job_id, func=func, args=args, kwargs={}, trigger=trigger, executor="default", name=name,
              misfire_grace_time=None, coalesce=True, max_instances=1)
    job._modify(next_run_time=trigger.get_next_fire_time(None, now))
    return {
        "job_id": job_id,
        "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
        "job_state": pickle.dumps(job.__getstate__(), pickle.HIGHEST_PROTOCOL),
        "spec": f"{func}|{args!r}|{key!r}",
    }


@settings(max_examples=300, deadline=None)
@given(
    review_id=st.integers(1, 10**9),
    state=st.sampled_from(["draft", "submitted"]),
    due_at=moments,
    tz=zones,
    every=st.timedeltas(timedelta(hours=1), timedelta(days=40)),
    max_reminders=st.integers(0, 6),
)
def test_a_review_due_row_is_what_apscheduler_pickles(review_id: int, state: str, due_at: datetime, tz: ZoneInfo,
                                                       every: timedelta, max_reminders: int) -> None:
    cfg = ScheduleSettings(tz=tz, reminder_every=every, max_reminders=max_reminders)
    review = SimpleNamespace(id=review_id, state=state, due_at=due_at, reminders_sent=0)
    spec = review_due_job(review, cfg)
    assert spec is not None
    now = due_at - timedelta(days=3)
    iso = due_at.isoformat()
    wall = due_at.astimezone(tz)  # reminders on the wall clock, as `ScheduleSettings.reminder_times` says
    dates = [wall + every * k for k in range(max_reminders + 1)]
    key = ("reminders", iso, every, max_reminders, tz.key)
    expected = expected_row("pulsecheck.scheduling.jobs:review_due", f"review-due:{review_id}",
                            (review_id, state, iso), f"review {review_id} due", dates, key, now, tz)
    assert JobStore(None, tz)._row(spec, now, {}) == expected  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    account_id=st.integers(1, 10**9),
    day=st.dates(date(1990, 1, 1), date(2090, 1, 1)),
    at=st.times(),
    tz=zones,
)
def test_a_next_review_row_is_what_apscheduler_pickles(account_id: int, day: date, at: time, tz: ZoneInfo) -> None:
    cfg = ScheduleSettings(tz=tz, next_review_at=at)
    spec = next_review_job(account_id, day, cfg)
    now = datetime(1989, 1, 1, tzinfo=UTC)
    key = ("next-review", day.isoformat(), at, tz.key)
    expected = expected_row("pulsecheck.scheduling.jobs:next_review", f"next-review:{account_id}",
                            (account_id, day.isoformat()), f"next review of account {account_id}",
                            [datetime.combine(day, at, tzinfo=tz)], key, now, tz)
    assert JobStore(None, tz)._row(spec, now, {}) == expected  # type: ignore[arg-type]


def test_rows_of_one_batch_sharing_a_key_are_each_what_apscheduler_pickles() -> None:
    # `write` computes the dates of specs with equal keys once (a batch of reviews due at the same moment).
    tz = ZONES[1]
    cfg = ScheduleSettings(tz=tz)
    due = datetime(2027, 3, 26, 23, 30, 0, 250, tzinfo=UTC)
    store, made, now = JobStore(None, tz), {}, due - timedelta(days=1)  # type: ignore[arg-type]
    iso = due.isoformat()  # one string in a job's arguments and its key: pickled once, then referred to
    key = ("reminders", iso, cfg.reminder_every, cfg.max_reminders, tz.key)
    dates = [due.astimezone(tz) + cfg.reminder_every * k for k in range(cfg.max_reminders + 1)]
    for review_id, state in [(1, "draft"), (2, "submitted"), (3, "draft")]:
        spec = review_due_job(SimpleNamespace(id=review_id, state=state, due_at=due, reminders_sent=0), cfg)
        assert spec is not None
        assert store._row(spec, now, made) == expected_row(  # type: ignore[arg-type]
            spec.func, spec.id, (review_id, state, iso), spec.name, dates, key, now, tz
        )
    assert len(made) == 1


@settings(max_examples=500, deadline=None)
@given(moment=moments)
def test_our_utc_timestamp_is_apschedulers_for_any_aware_moment(moment: datetime) -> None:
    assert utc_timestamp(moment) == datetime_to_utc_timestamp(moment)
    first = datetime.fromtimestamp(moment.timestamp(), UTC)  # a date-list trigger's first firing
    assert utc_timestamp(first) == datetime_to_utc_timestamp(first)


@settings(max_examples=300, deadline=None)
@given(zone=st.one_of(st.just(UTC), st.timedeltas(-timedelta(hours=23, minutes=59), timedelta(hours=23, minutes=59))
                      .map(timezone), st.builds(timezone, st.timedeltas(-timedelta(hours=23), timedelta(hours=23)),
                                                st.text(max_size=8))),
       moment=st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30)))
def test_the_registered_timezone_reducer_pickles_and_copies_as_python_does(zone: timezone, moment: datetime) -> None:
    # store.py registers `_reduce_timezone` for datetime.timezone in copyreg (every pickle of the process): pickles
    # of every protocol and copies must be those made without it.
    values = [zone, moment.replace(tzinfo=zone), {"at": moment.replace(tzinfo=zone), "zone": zone}]
    assert copyreg.dispatch_table[timezone] is _reduce_timezone
    made = [[pickle.dumps(value, protocol) for protocol in range(pickle.HIGHEST_PROTOCOL + 1)] for value in values]
    copies = [copy.deepcopy(value) for value in values]
    del copyreg.dispatch_table[timezone]
    try:
        assert made == [[pickle.dumps(value, protocol) for protocol in range(pickle.HIGHEST_PROTOCOL + 1)]
                        for value in values]
        assert copies == [copy.deepcopy(value) for value in values]
    finally:
        copyreg.pickle(timezone, _reduce_timezone)
    assert [pickle.loads(pickles[-1]) for pickles in made] == values
