"""The functions that scheduled jobs run, by the textual reference stored in each job.

Each job returns one line saying what it did, and does its work in `work()` transactions: the last one also
moves the job on to its next firing (the runner's `claim`), so a firing counts as done exactly when its work
committed. A job killed mid-way is still due and runs again: every job is idempotent. The job's arguments say
what it was scheduled for; a job whose row has moved on (a review no longer in that state, an acknowledged
escalation) does nothing, so a stale job is harmless until `reconcile` removes it. Notifications carry dedupe
keys built from what they announce, so a job that runs twice never notifies twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from pulsecheck.errors import ConflictError, PulsecheckError
from pulsecheck.notifications.outbox import People, enqueue_rows
from pulsecheck.scheduling.specs import OPEN_REVIEW_STATES, ScheduleSettings
from pulsecheck.storage.bulk import among
from pulsecheck.storage.models import Account, Escalation, Review
from pulsecheck.storage.tables import REVIEWS
from pulsecheck.workflow import reviews

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, CursorResult

    from pulsecheck.config import Settings
    from pulsecheck.storage.db import Database


@dataclass
class Runtime:
    """What jobs need: the database, the settings and the clock (fixed by `scheduler run --once`)."""

    database: Database
    settings: Settings
    cfg: ScheduleSettings
    clock: Callable[[], datetime]
    # The leader's fence, for jobs that commit on a connection of their own (Session transactions are fenced
    # by the leader's session hooks): raises Deposed when another scheduler took over.
    fence: Callable[[Connection], None] | None = None


CADENCE_BATCH = 100  # accounts per transaction of a cadence job: the write lock is never held for long

# Counting a reminder: the review's optimistic lock is checked and bumped as the ORM's flush would (a user's edit
# that raced it conflicts), for many reviews in one executemany.
_REMINDED = (
    update(REVIEWS)
    .where(REVIEWS.c.id == bindparam("review_id"), REVIEWS.c.version_id == bindparam("version"))
    .values(reminders_sent=bindparam("sent"), version_id=bindparam("version") + 1)
)


@dataclass
class Batch:
    """The transaction a batch of jobs of one kind shares, and what its jobs write, set-based: the recipients read
    once for the whole batch, and when the batch ends (`Batch.finish`) its notifications in one multi-row insert
    and its reminder counts in one executemany."""

    session: Session
    people: People
    messages: list[dict[str, Any]] = field(default_factory=list)
    reminders: list[tuple[Review, int]] = field(default_factory=list)
    rows: dict[tuple[type, Any], Any] = field(default_factory=dict)  # the prefetched rows, by (model, id)
    content_loaded: bool = False

    def review_content(self) -> None:
        """Load the risks and actions of the batch's reviews in two queries, once (an escalation reads a review's
        content: otherwise two lazy loads per review)."""
        if self.content_loaded:
            return
        self.content_loaded = True
        ids = [ident for model, ident in self.rows if model is Review]  # a batch's: a few hundred at most
        options = (selectinload(Review.risks), selectinload(Review.actions))  # filled in on the loaded reviews
        self.session.scalars(select(Review).where(among(Review.id, values=ids)).options(*options)).all()

    def get(self, model: type[Any], ident: Any) -> Any:
        """`session.get` for a prefetched row (a dict lookup); any other asks the session."""
        found = self.rows.get((model, ident))
        return found if found is not None else self.session.get(model, ident)

    def finish(self) -> None:
        """Write what the batch's jobs queued: the notifications (dedupe by the unique key: INSERT ... ON CONFLICT
        DO NOTHING) and the reminder counts (ConflictError if a review changed under the batch: rolled back, its
        jobs run again one by one)."""
        enqueue_rows(self.session, self.messages)
        self.messages = []
        if self.reminders:
            rows = [{"review_id": r.id, "version": r.version_id, "sent": sent} for r, sent in self.reminders]
            result = self.session.execute(_REMINDED, rows, execution_options={"preserve_rowcount": True})
            if cast("CursorResult[Any]", result).rowcount != len(rows):
                raise ConflictError("a review changed while its reminder was counted; it runs again")
            for review, sent in self.reminders:  # the loaded rows agree with the database again (nothing to flush)
                set_committed_value(review, "reminders_sent", sent)
                set_committed_value(review, "version_id", review.version_id + 1)
            self.reminders = []


_runtime: Runtime | None = None
_claim: Callable[[Session], None] | None = None
_batch: Batch | None = None

# The jobs whose work is one `work()` transaction: the runner runs due jobs of one of these kinds in batches,
# all of a batch's work (and moving its jobs on) in one transaction.
BATCHED = frozenset({f"{__name__}:review_due", f"{__name__}:escalation_deadline", f"{__name__}:next_review"})
# Of those, the kinds whose work never queries what an earlier job of its batch changed (so a batch of them needs
# no flush before each query): next_review does (it closes a review, then looks for an open one).
UNFLUSHED = frozenset({f"{__name__}:review_due", f"{__name__}:escalation_deadline"})


def set_runtime(runtime: Runtime | None) -> None:
    """What the jobs run with (None: outside the scheduler)."""
    global _runtime
    _runtime = runtime


def set_claim(claim: Callable[[Session], None] | None) -> None:
    """What moves the running job on to its next firing, inside the transaction of its last work."""
    global _claim
    _claim = claim


def _rt() -> Runtime:
    if _runtime is None:
        raise PulsecheckError("scheduled job run outside the scheduler")
    return _runtime


def _claim_in(session: Session) -> None:
    if _claim is not None:
        _claim(session)


def prefetch(session: Session, func_ref: str, args: list[tuple[Any, ...]]) -> list[Any]:
    """Load the rows a batch of jobs of one kind reads (each with its account) in one query per batch of ids,
    so that each job's `session.get` finds its row in the session instead of querying for it. The caller keeps
    the returned rows while the batch runs: the session holds its objects only weakly."""
    model: Any = {f"{__name__}:review_due": Review, f"{__name__}:escalation_deadline": Escalation,
                  f"{__name__}:next_review": Account}.get(func_ref)
    ids = [job_args[0] for job_args in args if job_args and isinstance(job_args[0], int)]
    if model is None or not ids:
        return []
    options = [] if model is Account else [joinedload(model.account)]
    return list(session.scalars(select(model).where(among(model.id, values=ids)).options(*options)))


def set_batch(session: Session | None, rows: list[Any] | None = None) -> Batch | None:
    """Start the batch run in `session`'s transaction (None: each job opens its own), with the rows `prefetch`
    loaded for it; returns it, for the runner to `finish` before moving its jobs on."""
    global _batch
    _batch = None if session is None else Batch(session, People(session))
    if _batch is not None and rows:
        _batch.rows = {(type(row), row.id): row for row in rows}
    return _batch


def _get(session: Session, model: type[Any], ident: Any) -> Any:
    """`session.get`, through the batch's prefetched rows when the job runs in a batch."""
    if _batch is not None and _batch.session is session:
        return _batch.get(model, ident)
    return session.get(model, ident)


@contextmanager
def work(last: bool = True) -> Iterator[Session]:
    """A transaction of the running job; the `last` one also moves the job on, so both commit together. In a
    batch, the batch's transaction: its jobs move on together, when it commits."""
    if _batch is not None:
        yield _batch.session
        if last:
            _claim_in(_batch.session)
        return
    with _rt().database.transaction() as session:
        yield session
        if last:
            _claim_in(session)


def _notify(
    session: Session,
    rt: Runtime,
    kind: str,
    roles: list[str],
    account: Account,
    review: Review | None,
    context: dict[str, Any],
    key: str,
) -> list[str]:
    """Queue a `kind` notification for the people behind `roles`; returns their names. In a batch the rows wait
    for the batch's one multi-row insert, and the recipients come from the batch's bulk reads."""
    if _batch is not None and _batch.session is session:
        rows = rt.cfg.routing.messages(_batch.people, kind, roles, account, review, context, key, rt.clock())
        _batch.messages.extend(rows)
        return list(dict.fromkeys(row["recipient"] for row in rows))
    people = rt.cfg.routing.notify(session, kind, roles, account, review, context, key, rt.clock())
    return [p.name for p in people]


def review_due(review_id: int, state: str, due_iso: str) -> str:
    """Remind whoever holds an overdue review; after the last reminder, escalate to the approver."""
    rt, now = _rt(), _rt().clock()
    with work() as session:
        review = _get(session, Review, review_id)
        if review is None or review.state != state or review.due_at is None or review.due_at.isoformat() != due_iso:
            return f"review {review_id}: no longer {state} with that due date; nothing to do"
        fired = sum(1 for moment in rt.cfg.reminder_times(review.due_at) if moment <= now)
        context = {"review_id": review.id, "due_at": review.due_at, "priority": review.priority}
        if fired > rt.cfg.max_reminders:
            sent = review.reminders_sent
            who = _notify(
                session,
                rt,
                "review_overdue",
                ["approver", "manager"],
                review.account,
                review,
                dict(context, reminder=sent, state=state),
                f"review-overdue:{review.id}:{state}:{due_iso}",
            )
            if _batch is not None and _batch.session is session:
                _batch.review_content()
            reviews.escalate(
                session,
                review,
                now,
                review.priority,
                None,
                "scheduler",
                f"overdue since {review.due_at.date()}: {sent} reminder(s) unanswered",
            )
            review.reminders_sent = rt.cfg.max_reminders + 1  # the series is over: no more jobs for it
            return f"review {review_id}: overdue after {sent} reminder(s), escalated to {', '.join(who) or 'nobody'}"
        if fired == 0:
            return f"review {review_id}: not due yet"
        holder = "reviewer" if state == "draft" else "approver"
        who = _notify(
            session,
            rt,
            "review_due",
            [holder],
            review.account,
            review,
            dict(context, reminder=fired),
            f"review-due:{review.id}:{state}:{due_iso}:{fired}",
        )
        if _batch is not None and _batch.session is session:
            _batch.reminders.append((review, fired))  # written with the batch's others (its job spec is unchanged)
        else:
            review.reminders_sent = fired
        return f"review {review_id}: reminder {fired}/{rt.cfg.max_reminders} to {', '.join(who) or 'nobody'}"


def escalation_deadline(escalation_id: int) -> str:
    """An escalation nobody acknowledged climbs the ladder to the level its age has reached."""
    rt, now = _rt(), _rt().clock()
    with work() as session:
        escalation = _get(session, Escalation, escalation_id)
        if escalation is None or escalation.status != "open":
            return f"escalation {escalation_id}: not open; nothing to do"
        deadlines = rt.cfg.ladder_deadlines(escalation.opened_at)
        level = sum(1 for moment in deadlines if moment <= now)
        if level <= escalation.level:
            return f"escalation {escalation_id}: still at level {escalation.level}"
        escalation.level = level
        escalation.due_at = deadlines[level] if level < len(deadlines) else None
        review = _get(session, Review, escalation.review_id) if escalation.review_id else None
        context = {
            "escalation_id": escalation.id, "severity": escalation.severity, "priority": escalation.priority,
            "reason": escalation.reason, "rule_id": escalation.rule_id, "level": level, "due_at": escalation.due_at,
        }  # fmt: skip
        role, key = rt.cfg.ladder[level].role, f"escalation:{escalation.id}:{level}"
        roles = [role]
        if role == "owner" and escalation.account.owner is None and escalation.owner:  # the fallback owner
            roles = [f"user:{escalation.owner}"]
        who = _notify(session, rt, "escalation_level_up", roles, escalation.account, review, context, key)
        if not who:  # never to nobody: the admins, told why
            note = f"Nobody holds the ladder's role {role!r} for {escalation.account.name}: this goes to the admins."
            context["owner_note"] = note
            who = _notify(session, rt, "escalation_level_up", ["admin"], escalation.account, review, context, key)
        role = rt.cfg.ladder[level].role
        return f"escalation {escalation_id}: level {level} ({role}) notified {', '.join(who) or 'nobody'}"


def _open_next_review(session: Session, rt: Runtime, account: Account, now: datetime, due_in: Any, why: str) -> str:
    """Close the approved review (if any) and open the next one, owned by the account owner."""
    if account.owner is None:
        return f"{account.external_id}: no owner, skipped"
    current = reviews.open_review_for(session, account.id)
    if current is not None and current.state in OPEN_REVIEW_STATES:
        return f"{account.external_id}: review {current.id} is still {current.state}"
    if current is not None:  # approved: the new review follows it
        reviews.transition(session, current.id, "close", reviews.SYSTEM_ACTOR, now, cause="scheduler")
    review = reviews.new_review(
        session, account.external_id, reviews.SYSTEM_ACTOR, now, due_in, kind="cadence", cause="scheduler"
    )
    _notify(
        session,
        rt,
        "review_opened",
        ["reviewer"],
        account,
        review,
        {"review_id": review.id, "rule_id": why, "due_at": review.due_at, "priority": review.priority},
        f"review-opened:{review.id}",
    )
    closed = f", closed review {current.id}" if current is not None else ""
    return f"{account.external_id}: opened review {review.id} for {review.reviewer}{closed}"


def next_review(account_id: int, day_iso: str) -> str:
    """The next review date of an approved review has come: open the next review."""
    rt, now = _rt(), _rt().clock()
    with work() as session:
        account = _get(session, Account, account_id)
        if account is None:
            return f"account {account_id}: gone; nothing to do"
        return _open_next_review(session, rt, account, now, rt.settings.review.cadence_due_in, f"next review {day_iso}")


def cadence(segment: str) -> str:
    """Open the next cadence review for every account of a segment that has none open."""
    rt, now = _rt(), _rt().clock()
    settings = next((c for c in rt.cfg.cadences if c.segment == segment), None)
    if settings is None:
        return f"cadence {segment}: no longer configured; nothing to do"
    with rt.database.transaction() as session:
        ids = list(session.scalars(select(Account.id).where(Account.segment == segment).order_by(Account.id)))
    outcomes: list[str] = []
    for start in range(0, len(ids), CADENCE_BATCH):  # killed mid-way, the next run opens the rest
        with work(last=start + CADENCE_BATCH >= len(ids)) as session:
            batch = session.scalars(select(Account).where(among(Account.id, values=ids[start : start + CADENCE_BATCH])))
            why = f"cadence:{segment}"
            outcomes += [_open_next_review(session, rt, a, now, settings.due_in, why) for a in sorted(batch, key=_id)]
    opened = sum(1 for line in outcomes if "opened review" in line)
    skipped = [line for line in outcomes if "no owner" in line]
    tail = f"; {len(skipped)} without an owner skipped" if skipped else ""
    return f"cadence {segment}: {opened} review(s) opened over {len(ids)} account(s){tail}"


def _id(account: Account) -> int:
    return account.id


def evaluate() -> str:
    """The active rules over the portfolio, as `pulsecheck evaluate` does."""
    from pulsecheck.workflow.evaluation import EvaluationSettings
    from pulsecheck.workflow.evaluation import evaluate as run_evaluation

    rt, now = _rt(), _rt().clock()
    config = EvaluationSettings.from_settings(rt.settings)
    report = run_evaluation(rt.database, config, now, now, on_done=_claim_in)  # moved on with the run's end
    recovered = "".join(f"; {line}, marked failed" for line in report.recovered)
    actions = len(report.actions)
    return f"evaluate: {report.accounts} account(s), {len(report.firings)} firing(s), {actions} action(s){recovered}"


def dispatch_notifications() -> str:
    """One pass of the outbox dispatcher."""
    from pulsecheck.notifications.dispatch import dispatch

    report = dispatch(_rt().database, _rt().settings, _rt().clock(), fence=_rt().fence)
    return f"dispatch: {report.sent} sent, {report.retried} to retry, {report.failed} failed"
