"""Job specs: which jobs should exist, derived from the database rows and the schedule settings.

The rows are the source of truth. Every job has a stable id, computed from a row and the settings by the
`*_job` functions: `review-due:<review>`, `next-review:<account>`, `escalation-deadline:<escalation>`,
`cadence:<segment>`, `evaluate`, `dispatch-notifications`. A `JobSpec` says what a job runs, with which
arguments, on which trigger, and carries a fingerprint of what it was made from, so that keeping the stored
jobs in step (`sync`) compares text instead of unpickling jobs. Nothing here touches the job store.

Times are computed on the business time zone's wall clock, so that "every 2 days" or "at 09:00" stay put
across a DST change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session, aliased

from pulsecheck.errors import InputError
from pulsecheck.notifications.outbox import Routing
from pulsecheck.storage.models import Escalation, Review

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

    from pulsecheck.config import Settings

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

    def at_day(self, day: date) -> datetime:
        return datetime.combine(day, self.next_review_at, tzinfo=self.tz)

    def ladder_deadlines(self, opened_at: datetime) -> list[datetime]:
        """When each level after the first is reached, if nobody acknowledges the escalation: on the business time
        zone's wall clock (a sum to an aware datetime moves its wall clock and keeps its zone, fold 0: a day stays a
        calendar day across DST)."""
        opened = opened_at.astimezone(self.tz)
        return [opened + step.after for step in self.ladder[1:]]

    def reminder_times(self, due_at: datetime) -> list[datetime]:
        """Reminders at the due date and every interval after it, then one more firing: the escalation. On the
        business time zone's wall clock, as `ladder_deadlines`."""
        due = due_at.astimezone(self.tz)
        return [due + offset for offset in self.reminder_offsets]

    @cached_property
    def reminder_offsets(self) -> tuple[timedelta, ...]:
        """How long after the due date each reminder fires, the first at it (the same for every review)."""
        return tuple(self.reminder_every * k for k in range(self.max_reminders + 1))


def _crontab(expr: str, tz: ZoneInfo, where: str) -> BaseTrigger:
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(CADENCES.get(expr, expr), timezone=tz)
    except ValueError as exc:
        raise InputError(f"{where}: {expr!r} is not weekly, monthly, quarterly or a crontab line: {exc}") from None


# --- desired jobs -------------------------------------------------------------------------------


@dataclass
class JobSpec:
    """A job as the rows want it. `key` sums up a date-list trigger, so that comparing a stored job with the
    wanted one needs no date arithmetic (reconcile compares every job at start-up). Its trigger is built by
    `make_trigger` only when the job is written (most specs are only compared).

    Not frozen, though nothing changes a spec once made, and with no cached properties: a frozen dataclass's
    `__init__` sets each field through `object.__setattr__`, and `functools.cached_property` takes a lock at its
    first read (Python 3.11), which together cost a commit hook's written job more than its fingerprint."""

    id: str
    func: str
    args: tuple[Any, ...]
    make_trigger: Callable[[], BaseTrigger]
    name: str
    key: tuple[Any, ...] | None = None

    @property
    def fingerprint(self) -> str:
        """What the job is made from (stored beside it): equal fingerprints, equal jobs. Formatted at each read: the
        commit hook reads it once per job; `reconcile` reads a job it rewrites up to three times (few do)."""
        made_from = repr(self.key) if self.key is not None else repr(self.make_trigger())
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
    """Open the account's next review on the approved review's next review date, at the configured time."""
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
    """The jobs the settings alone decide: cadence reviews per segment, periodic evaluation, dispatch."""
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


# --- the jobs a transaction's rows decide (the commit hook) -------------------------------------


def review_jobs(
    session: Session, review: Review, cfg: ScheduleSettings, *, alone: bool = False
) -> dict[str, JobSpec | None]:
    """The jobs a review decides: its reminders, and its account's next review once it is approved. `alone`: the
    review was not closed earlier in this transaction and no other review of its account was written in it."""
    wanted: dict[str, JobSpec | None] = {f"review-due:{review.id}": review_due_job(review, cfg)}
    if review.state in ("approved", "closed") and review.next_review_date is not None:
        key = f"next-review:{review.account_id}"
        # A review that is not closed is its account's only one (the unique index uq_reviews_open_account), so
        # no other review of the account is open while it is approved, nor after it is closed unless one was
        # written since (closed is final): only a closed review that was closed before, or has such company, asks.
        has_open = review.state == "closed" and not alone and _has_open_review(session, review.account_id)
        wanted[key] = None if has_open else next_review_job(review.account_id, review.next_review_date, cfg)
    return wanted


def escalation_jobs(escalation: Escalation, cfg: ScheduleSettings) -> dict[str, JobSpec | None]:
    """The job an escalation decides: its ladder's deadlines, or none once it is acknowledged or at the top."""
    return {f"escalation-deadline:{escalation.id}": escalation_job(escalation, cfg)}


# Built once (no IN list to render per call); run on the session's connection (the commit hook calls it after
# its flush: nothing is pending).
_OPEN_REVIEW = (
    select(Review.id)
    .where(Review.account_id == bindparam("account_id"), or_(*(Review.state == state for state in OPEN_REVIEW_STATES)))
    .limit(1)
)


def _has_open_review(session: Session, account_id: int) -> bool:
    return session.connection().execute(_OPEN_REVIEW, {"account_id": account_id}).first() is not None


# --- every job the rows want (reconcile at scheduler start) -------------------------------------


def all_jobs(session: Session, cfg: ScheduleSettings) -> dict[str, JobSpec]:
    """Every job that should exist now, by id, read from the rows in a few bulk queries."""
    specs = [
        *_due_jobs(session, cfg),
        *_next_review_jobs(session, cfg),
        *_ladder_jobs(session, cfg),
        *periodic_jobs(cfg),
    ]
    return {spec.id: spec for spec in specs}


def _due_jobs(session: Session, cfg: ScheduleSettings) -> Iterator[JobSpec]:
    for review in session.execute(_due_rows()):
        spec = review_due_job(review, cfg)
        if spec:
            yield spec


def _due_rows() -> Any:
    """The reviews that want a `review-due` job (`review_due_job`'s conditions, in SQL)."""
    columns = (Review.id, Review.state, Review.due_at, Review.reminders_sent)
    return select(*columns).where(Review.state.in_(OPEN_REVIEW_STATES), Review.due_at.is_not(None))


def _next_review_jobs(session: Session, cfg: ScheduleSettings) -> Iterator[JobSpec]:
    """The newest approved (or closed) review's next review date, for accounts with no review open."""
    opened = aliased(Review)
    has_open = select(opened.id).where(opened.account_id == Review.account_id, opened.state.in_(OPEN_REVIEW_STATES))
    latest: dict[int, date] = {}
    rows = session.connection().execute(
        select(Review.account_id, Review.next_review_date)
        .where(Review.state.in_(("approved", "closed")), Review.next_review_date.is_not(None), ~has_open.exists())
        .order_by(Review.account_id, Review.id)
    )
    for account_id, day in rows:
        if day is not None:
            latest[account_id] = day  # the newest review's date wins
    for account_id, day in latest.items():
        yield next_review_job(account_id, day, cfg)


def _ladder_jobs(session: Session, cfg: ScheduleSettings) -> Iterator[JobSpec]:
    for escalation in session.scalars(select(Escalation).where(Escalation.status == "open")):
        spec = escalation_job(escalation, cfg)
        if spec:
            yield spec


# --- what reconcile changes: fingerprints compared first, specs made only for the jobs that differ ---------


def changed_jobs(
    session: Session, cfg: ScheduleSettings, stored: Mapping[str, str | None]
) -> tuple[dict[str, JobSpec | None], int]:
    """The jobs `reconcile` must write (the spec of every wanted job that is missing or whose stored fingerprint
    differs from `stored`) or remove (None: stored, but no row wants it), and how many wanted jobs are right.

    At a scheduler start nearly every stored job is right, so the bulk of them (the review-due jobs, one per open
    review) are compared as text made straight from their rows: no spec, trigger or key tuple is built for a job
    that is kept."""
    orphans = dict(stored)  # what is left once every wanted job has taken its own
    changed: dict[str, JobSpec | None] = {}
    kept = 0
    fingerprint = review_due_fingerprint(cfg)
    rows = session.connection().execute(_due_rows().where(Review.reminders_sent <= cfg.max_reminders)).all()
    for row in rows:  # Core rows, fetched at once: no ORM loading, no fetch call per row
        review_id, state, due_at, _ = row
        job_id = f"review-due:{review_id}"
        if orphans.pop(job_id, None) == fingerprint(review_id, state, due_at):
            kept += 1
        else:
            changed[job_id] = review_due_job(row, cfg)
    for spec in (*_next_review_jobs(session, cfg), *_ladder_jobs(session, cfg), *periodic_jobs(cfg)):
        if orphans.pop(spec.id, None) == spec.fingerprint:
            kept += 1
        else:
            changed[spec.id] = spec
    changed.update(dict.fromkeys(orphans))
    return changed, kept


def review_due_fingerprint(cfg: ScheduleSettings) -> Callable[[int, str, datetime], str]:
    """`review_due_job(review, cfg).fingerprint` of a review that wants the job, from its id, state and due date:
    one format per review (`f"{func}|{args!r}|{key!r}"`, the settings' part of the key formatted once)."""
    head = f"{FUNCS}:review_due|("
    tail = f", {cfg.reminder_every!r}, {cfg.max_reminders!r}, {cfg.tz.key!r})"

    def fingerprint(review_id: int, state: str, due_at: datetime) -> str:
        iso = due_at.isoformat()
        return f"{head}{review_id!r}, {state!r}, {iso!r})|('reminders', {iso!r}{tail}"

    return fingerprint
