"""Scheduled jobs: what should be scheduled, derived from the database rows, kept in APScheduler's job store.

The database rows are the source of truth. Every job has a stable id, and the `*_job` functions compute it
from a row and the settings: `review-due:<review>`, `next-review:<account>`, `escalation-deadline:<escalation>`,
`cadence:<segment>`, `evaluate`, `dispatch-notifications`. Commands never call the scheduler: a session hook
(`install`) looks at the reviews and escalations a transaction touched and adds, moves or removes their jobs in
that same transaction. Jobs are APScheduler `Job`s, serialized as its SQLAlchemy job store does, written in bulk
into its table through the session, with a fingerprint of what they were made from beside them; `reconcile`
recomputes every job at scheduler start and repairs what is missing or stale by comparing fingerprints.

Times are computed on the business time zone's wall clock, so that "every 2 days" or "at 09:00" stay put
across a DST change.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError
from pulsecheck.notifications.outbox import Routing
from pulsecheck.storage.models import Escalation, Review, SchedulerJob

if TYPE_CHECKING:
    from apscheduler.job import Job
    from apscheduler.triggers.base import BaseTrigger

    from pulsecheck.config import Settings
    from pulsecheck.storage.db import Database

OPEN_REVIEW_STATES = ("draft", "submitted")
FUNCS = "pulsecheck.scheduling.jobs"
CADENCES = {  # named cadences as crontab lines (day-of-week by name: APScheduler 3 numbers weekdays from Monday)
    "weekly": "0 9 * * mon",
    "monthly": "0 9 1 * *",
    "quarterly": "0 9 1 1,4,7,10 *",
}


@dataclass(frozen=True)
class LadderStep:
    role: str
    after: timedelta


@dataclass(frozen=True)
class Cadence:
    segment: str
    crontab: str
    due_in: timedelta


@dataclass(frozen=True)
class ScheduleSettings:
    """`[scheduler]`, `[escalation]` and `[cadence.<segment>]` of pulsecheck.toml."""

    tz: ZoneInfo
    reminder_every: timedelta = timedelta(days=2)
    max_reminders: int = 3
    next_review_at: time = time(9, 0)
    evaluate: str | None = "0 6 * * *"  # crontab, or None to switch periodic evaluation off
    dispatch_every: timedelta = timedelta(minutes=1)
    ladder: tuple[LadderStep, ...] = (
        LadderStep("owner", timedelta(0)),
        LadderStep("manager", timedelta(days=2)),
        LadderStep("head_of_cs", timedelta(days=5)),
    )
    cadences: tuple[Cadence, ...] = ()
    routing: Routing = field(default_factory=Routing)

    @classmethod
    def from_settings(cls, settings: Settings) -> ScheduleSettings:
        """The schedule of validated settings: `[scheduler]`, `[escalation]` and `[cadence.<segment>]`."""
        scheduler, default_due = settings.scheduler, settings.review.cadence_due_in
        return cls(
            tz=settings.tz,
            reminder_every=scheduler.reminder_every,
            max_reminders=scheduler.max_reminders,
            next_review_at=scheduler.next_review_at,
            evaluate=scheduler.evaluate,
            dispatch_every=scheduler.dispatch_every,
            ladder=tuple(LadderStep(step.role, step.after) for step in settings.escalation.ladder),
            cadences=tuple(Cadence(name, c.schedule, c.due_in or default_due) for name, c in settings.cadence.items()),
            routing=Routing.from_settings(settings),
        )

    def wall_clock_add(self, moment: datetime, delta: timedelta) -> datetime:
        """`moment + delta` on the business time zone's wall clock (a day stays a calendar day across DST)."""
        naive = moment.astimezone(self.tz).replace(tzinfo=None) + delta
        return naive.replace(tzinfo=self.tz)

    def at_day(self, day: date) -> datetime:
        return datetime.combine(day, self.next_review_at, tzinfo=self.tz)

    def ladder_deadlines(self, opened_at: datetime) -> list[datetime]:
        """When each level after the first is reached, if nobody acknowledges the escalation."""
        return [self.wall_clock_add(opened_at, step.after) for step in self.ladder[1:]]

    def reminder_times(self, due_at: datetime) -> list[datetime]:
        """Reminders at the due date and every interval after it, then one more firing: the escalation."""
        return [self.wall_clock_add(due_at, self.reminder_every * k) for k in range(self.max_reminders + 1)]


def _crontab(expr: str, tz: ZoneInfo, where: str) -> BaseTrigger:
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(CADENCES.get(expr, expr), timezone=tz)
    except ValueError as exc:
        raise InputError(f"{where}: {expr!r} is not weekly, monthly, quarterly or a crontab line: {exc}") from None


# --- desired jobs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec:
    """A job as the rows want it. `key` sums up a date-list trigger, so that comparing a stored job with the
    wanted one needs no date arithmetic (reconcile compares every job at start-up)."""

    id: str
    func: str
    args: tuple[Any, ...]
    make_trigger: Callable[[], BaseTrigger]
    name: str
    key: tuple[Any, ...] | None = None

    @cached_property
    def trigger(self) -> BaseTrigger:
        return self.make_trigger()

    @cached_property
    def fingerprint(self) -> str:
        """What the job is made from (stored beside it): equal fingerprints, equal jobs."""
        made_from = repr(self.key) if self.key is not None else repr(self.trigger)
        return f"{self.func}|{self.args!r}|{made_from}"


def _dates(key: tuple[Any, ...], moments: Callable[[], list[datetime]]) -> Callable[[], BaseTrigger]:
    def make() -> BaseTrigger:
        from pulsecheck.scheduling.triggers import DatesTrigger

        return DatesTrigger(moments(), key)

    return make


def review_due_job(review: Any, cfg: ScheduleSettings) -> JobSpec | None:
    """Reminders while a review is open past its due date; the job's arguments pin the state it was made for."""
    if review.state not in OPEN_REVIEW_STATES or review.due_at is None or review.reminders_sent > cfg.max_reminders:
        return None  # closed, no due date, or its reminders are over and it was escalated
    due = review.due_at
    iso = due.isoformat()
    key = ("reminders", iso, cfg.reminder_every, cfg.max_reminders, cfg.tz.key)
    return JobSpec(
        f"review-due:{review.id}",
        f"{FUNCS}:review_due",
        (review.id, review.state, iso),
        _dates(key, lambda: cfg.reminder_times(due)),
        f"review {review.id} due",
        key,
    )


def next_review_job(account_id: int, day: date, cfg: ScheduleSettings) -> JobSpec:
    key = ("next-review", day.isoformat(), cfg.next_review_at, cfg.tz.key)
    return JobSpec(
        f"next-review:{account_id}",
        f"{FUNCS}:next_review",
        (account_id, day.isoformat()),
        _dates(key, lambda: [cfg.at_day(day)]),
        f"next review of account {account_id}",
        key,
    )


def escalation_job(escalation: Escalation, cfg: ScheduleSettings) -> JobSpec | None:
    """The ladder's deadlines while an escalation is open (acknowledging it stops the climb)."""
    if escalation.status != "open" or escalation.level >= len(cfg.ladder) - 1:
        return None
    opened = escalation.opened_at
    key = ("ladder", opened.isoformat(), tuple(step.after for step in cfg.ladder[1:]), cfg.tz.key)
    return JobSpec(
        f"escalation-deadline:{escalation.id}",
        f"{FUNCS}:escalation_deadline",
        (escalation.id,),
        _dates(key, lambda: cfg.ladder_deadlines(opened)),
        f"escalation {escalation.id} ladder",
        key,
    )


def periodic_jobs(cfg: ScheduleSettings) -> list[JobSpec]:
    from apscheduler.triggers.interval import IntervalTrigger

    jobs = [
        JobSpec(
            f"cadence:{c.segment}",
            f"{FUNCS}:cadence",
            (c.segment,),
            lambda c=c: _crontab(c.crontab, cfg.tz, f"cadence.{c.segment}"),  # type: ignore[misc]
            f"cadence reviews of {c.segment}",
        )
        for c in cfg.cadences
    ]
    if cfg.evaluate:
        crontab = cfg.evaluate
        jobs.append(
            JobSpec("evaluate", f"{FUNCS}:evaluate", (), lambda: _crontab(crontab, cfg.tz, "evaluate"), "rules")
        )
    # Fixed start: the trigger stays equal to itself from one reconcile to the next.
    start = datetime(2000, 1, 1, tzinfo=cfg.tz)
    every = IntervalTrigger(seconds=int(cfg.dispatch_every.total_seconds()), start_date=start, timezone=cfg.tz)
    jobs.append(
        JobSpec("dispatch-notifications", f"{FUNCS}:dispatch_notifications", (), lambda: every, "notifications")
    )
    return jobs


# --- the job store, in the caller's transaction -------------------------------------------------


class _SessionBind:
    """Looks like an Engine to APScheduler's job store, but runs every statement in one session's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.url = session.get_bind().engine.url

    @contextmanager
    def begin(self) -> Iterator[Any]:
        yield self.session.connection()


def job_store(session: Session, tz: ZoneInfo) -> Any:
    """APScheduler's SQLAlchemy job store working inside `session` (the table comes from our migrations)."""
    from apscheduler.jobstores.base import BaseJobStore
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    store = SQLAlchemyJobStore(engine=_SessionBind(session))
    BaseJobStore.start(store, BackgroundScheduler(timezone=tz), "default")
    return store


def _make_job(store: Any, spec: JobSpec, now: datetime) -> Job:
    from apscheduler.job import Job

    job = Job(
        store._scheduler,
        id=spec.id,
        func=spec.func,
        args=spec.args,
        kwargs={},
        trigger=spec.trigger,
        executor="default",
        name=spec.name,
        misfire_grace_time=None,  # a job missed while nothing ran still runs, once (coalesced)
        coalesce=True,
        max_instances=1,
    )
    # The first firing, even if it is already past: a due date in the past is due now.
    job._modify(next_run_time=spec.trigger.get_next_fire_time(None, now))
    return job


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: int = 0


def stored_jobs(session: Session, ids: Collection[str] | None = None) -> dict[str, str | None]:
    """The stored jobs' fingerprints (all, or those among `ids`), read in a few queries."""
    query = select(SchedulerJob.id, SchedulerJob.spec)
    if ids is None:
        return {job_id: spec for job_id, spec in session.execute(query)}
    found: dict[str, str | None] = {}
    listed = list(ids)
    for start in range(0, len(listed), 500):
        rows = session.execute(query.where(SchedulerJob.id.in_(listed[start : start + 500])))
        found.update({job_id: spec for job_id, spec in rows})
    return found


def apply(
    session: Session,
    store: Any,
    wanted: Mapping[str, JobSpec | None],
    now: datetime,
    stored: Mapping[str, str | None] | None = None,
) -> SyncReport:
    """Make the stored jobs match `wanted` (None: no such job), in bulk; equal jobs keep their next run time."""
    import pickle

    from apscheduler.util import datetime_to_utc_timestamp

    if stored is None:
        stored = stored_jobs(session, wanted)
    report = SyncReport()
    rows: dict[str, list[dict[str, Any]]] = {"insert": [], "update": []}
    for job_id, spec in wanted.items():
        if spec is None:
            if job_id in stored:
                report.removed.append(job_id)
            continue
        if stored.get(job_id) == spec.fingerprint:
            report.kept += 1
            continue
        job = _make_job(store, spec, now)
        row = {
            "job_id": job_id,
            "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
            "job_state": pickle.dumps(job.__getstate__(), store.pickle_protocol),
            "spec": spec.fingerprint,
        }
        new = job_id not in stored
        rows["insert" if new else "update"].append(row)
        (report.added if new else report.replaced).append(job_id)
    table = cast(Table, SchedulerJob.__table__)
    if rows["insert"]:
        session.execute(
            table.insert().values(id=bindparam("job_id"), next_run_time=bindparam("next_run_time")), rows["insert"]
        )
    if rows["update"]:
        statement = table.update().where(table.c.id == bindparam("job_id"))
        session.execute(statement.values(next_run_time=bindparam("next_run_time")), rows["update"])
    for start in range(0, len(report.removed), 500):
        session.execute(delete(SchedulerJob).where(SchedulerJob.id.in_(report.removed[start : start + 500])))
    return report


# --- keeping jobs in step with the rows ---------------------------------------------------------


def review_jobs(session: Session, review: Review, cfg: ScheduleSettings) -> dict[str, JobSpec | None]:
    """The jobs a review decides: its reminders, and its account's next review once it is approved."""
    wanted: dict[str, JobSpec | None] = {f"review-due:{review.id}": review_due_job(review, cfg)}
    if review.state in ("approved", "closed") and review.next_review_date is not None:
        key = f"next-review:{review.account_id}"
        has_open = _has_open_review(session, review.account_id)
        wanted[key] = None if has_open else next_review_job(review.account_id, review.next_review_date, cfg)
    return wanted


def escalation_jobs(escalation: Escalation, cfg: ScheduleSettings) -> dict[str, JobSpec | None]:
    return {f"escalation-deadline:{escalation.id}": escalation_job(escalation, cfg)}


def _has_open_review(session: Session, account_id: int) -> bool:
    query = select(Review.id).where(Review.account_id == account_id, Review.state.in_(OPEN_REVIEW_STATES))
    return session.scalar(query.limit(1)) is not None


def install(database: Database, settings: Settings) -> None:
    """Keep jobs in step with every review and escalation that a transaction of `database` writes."""
    from pulsecheck.storage.hooks import before_commit

    cfg = ScheduleSettings.from_settings(settings)  # built here, so that no settings work happens in a commit

    def touched(session: Session) -> list[Any]:
        return [obj for obj in (*session.new, *session.dirty) if isinstance(obj, Review | Escalation)]

    def sync(session: Session, objects: list[Any]) -> None:
        wanted: dict[str, JobSpec | None] = {}
        for obj in sorted(objects, key=lambda o: (type(o).__name__, o.id)):
            wanted.update(review_jobs(session, obj, cfg) if isinstance(obj, Review) else escalation_jobs(obj, cfg))
        apply(session, job_store(session, cfg.tz), wanted, settings.now())

    before_commit(database, "schedule", touched, sync)


def reconcile(session: Session, cfg: ScheduleSettings, now: datetime) -> SyncReport:
    """Recompute every job from the rows: add what is missing, replace what is stale, remove what is orphaned."""
    store = job_store(session, cfg.tz)
    wanted: dict[str, JobSpec | None] = {}
    columns = (Review.id, Review.state, Review.due_at, Review.reminders_sent)
    for review in session.execute(select(*columns).where(Review.state.in_(OPEN_REVIEW_STATES))):
        spec = review_due_job(review, cfg)
        if spec:
            wanted[spec.id] = spec
    open_accounts = set(
        session.scalars(select(Review.account_id).where(Review.state.in_(OPEN_REVIEW_STATES)).distinct())
    )
    latest: dict[int, date] = {}
    rows = session.execute(
        select(Review.account_id, Review.next_review_date)
        .where(Review.state.in_(("approved", "closed")), Review.next_review_date.is_not(None))
        .order_by(Review.account_id, Review.id)
    )
    for account_id, day in rows:
        if day is not None:
            latest[account_id] = day  # the newest review's date wins
    for account_id, day in latest.items():
        if account_id not in open_accounts:
            spec = next_review_job(account_id, day, cfg)
            wanted[spec.id] = spec
    for escalation in session.scalars(select(Escalation).where(Escalation.status == "open")):
        spec = escalation_job(escalation, cfg)
        if spec:
            wanted[spec.id] = spec
    for spec in periodic_jobs(cfg):
        wanted[spec.id] = spec
    stored = stored_jobs(session)
    wanted.update({job_id: None for job_id in stored if job_id not in wanted})  # orphans go
    return apply(session, store, wanted, now, stored)


@dataclass(frozen=True)
class JobRow:
    id: str
    name: str
    next_run_time: datetime | None
    trigger: str


def list_jobs(session: Session, tz: ZoneInfo) -> list[JobRow]:
    return [
        JobRow(job.id, job.name, job.next_run_time, str(job.trigger)) for job in job_store(session, tz).get_all_jobs()
    ]
