"""Opening and escalating many reviews at once (the evaluator's batches): the same rows and audit events that
`lifecycle.new_review` and `lifecycle.escalate` write one at a time, written with multi-row statements.

The state machine still decides every event. For the system actor its verdict depends only on the state, the
event, the cause and the review's people, so it is asked once per distinct combination, not once per review.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError, NotFoundError, RefusedError
from pulsecheck.notifications.outbox import People
from pulsecheck.scoring.model import ScoringModel
from pulsecheck.states import review as machine
from pulsecheck.storage.bulk import among, insert_returning, table_of, transient
from pulsecheck.storage.hooks import written
from pulsecheck.storage.models import Account, Review, ReviewEvent, ScoreSnapshot, User
from pulsecheck.vocab import PRIORITIES
from pulsecheck.workflow.reviews.lifecycle import SYSTEM_ACTOR, approver_refusal
from pulsecheck.workflow.scorecards import ModelCache, snapshot_card

CHUNK = 1000  # ids per IN (...) list


@dataclass(frozen=True)
class Raise:
    """One escalation of a review: the priority and due date it asks for (never lowered, never pushed out), why."""

    priority: str
    due_at: datetime | None
    cause: str
    comment: str


@dataclass
class Opening:
    """A review the system opens for an account (loaded with its owner and manager), reviewed by the owner, and
    the escalations it takes in the same transaction, in order."""

    account: Account
    priority: str
    due_at: datetime
    cause: str
    kind: str = "rule"
    raises: list[Raise] = field(default_factory=list)


@dataclass
class Known:
    """What every batch of a run reads alike, read once for the run: the people (all users), the state machine's
    verdicts for the system actor, and the scoring models that baselines are read with."""

    people: People
    verdicts: Verdicts
    models: dict[int, tuple[str | None, ScoringModel | None]] = field(default_factory=dict)

    @classmethod
    def read(cls, session: Session) -> Known:
        people = People.everyone(session)
        system = people.named([SYSTEM_ACTOR])
        return cls(people, Verdicts(frozenset(system[0].role_set) if system else frozenset()))

    def at(self, session: Session) -> Known:
        """Itself, reading what it does not know yet (a user added since) through `session`."""
        self.people.session = session
        return self


def open_many(session: Session, openings: Sequence[Opening], now: datetime, known: Known | None = None) -> list[Review]:
    """Open draft reviews, one per opening (none of these accounts has a review open), each with its `open` and
    `escalate` audit rows; returns them with their ids, in order. The commit hooks see them as if flushed.
    `known`: what the run has read already (else read here)."""
    if not openings:
        return []
    known = known.at(session) if known is not None else Known.read(session)
    verdicts = known.verdicts
    names = [_approver_name(opening.account) for opening in openings]
    approvers = _users(known.people, names, [opening.account.manager for opening in openings])
    baselines = _baselines(session, [o.account.id for o in openings], known.models)
    rows, planned = [], []
    checked: dict[tuple[str | None, str], str | None] = {}  # (approver, reviewer): the approver once checked
    for opening in openings:
        account, reviewer = opening.account, opening.account.owner
        if reviewer is None:
            raise RefusedError(f"account {account.external_id} has no owner to review it")
        pair = (_approver_name(account), reviewer.name)
        if pair not in checked:
            checked[pair] = _approver(approvers, *pair)
        approver = checked[pair]
        if opening.priority not in PRIORITIES:
            raise InputError(f"priority {opening.priority!r}: choose from {', '.join(PRIORITIES)}")
        if opening.due_at <= now:
            raise InputError(f"due {opening.due_at.date()}: must be in the future")
        people = (reviewer.name, approver, reviewer.manager_name)
        state = verdicts.fire(machine.NEW, "open", opening.cause, *people)
        score, bucket, card = baselines.get(account.id, (None, None, None))
        row = {
            "account_id": account.id, "state": state, "kind": opening.kind, "reviewer": reviewer.name,
            "approver": approver, "priority": opening.priority, "due_at": opening.due_at, "created_at": now,
            "updated_at": now, "baseline_score": score, "baseline_bucket": bucket, "baseline": card,
            "reminders_sent": 0, "version_id": 1,
        }  # fmt: skip
        events = [_event("open", None, state, opening.cause, None, now)]
        for step in opening.raises:
            verdicts.fire(state, "escalate", step.cause, *people)
            _raise(row, step)
            events.append(_event("escalate", state, state, step.cause, step.comment, now))
        rows.append(row)
        planned.append(events)
    ids = {account_id: new_id for new_id, account_id in insert_returning(session, Review, rows, "account_id")}
    opened = transient(Review, [dict(row, id=ids[row["account_id"]]) for row in rows])
    for review, events in zip(opened, planned, strict=True):
        for event in events:
            event["review_id"] = review.id
    written(session, opened)
    _insert_events(session, [event for events in planned for event in events])
    return opened


def escalate_many(
    session: Session, raised: Sequence[tuple[Review, Raise]], now: datetime, known: Known | None = None
) -> None:
    """Escalate loaded open reviews, in order: an approved one is reopened first (signatures cleared); priority
    raised and due date pulled in as `lifecycle.escalate` does. The reviews are written at the next flush, their
    audit rows in one statement."""
    if not raised:
        return
    known = known.at(session) if known is not None else Known.read(session)
    verdicts = known.verdicts
    managers = {user.name: user.manager_name for user in known.people.named({review.reviewer for review, _ in raised})}
    events = []
    for review, step in raised:
        people = (review.reviewer, review.approver, managers.get(review.reviewer))
        if review.state == "approved":
            after = verdicts.fire(review.state, "reopen", step.cause, *people)
            events.append(_event("reopen", review.state, after, step.cause, step.comment, now, review.id))
            review.state = after
            review.employee_signed_by = review.employee_signed_at = review.employee_digest = None
            review.manager_signed_by = review.manager_signed_at = review.manager_digest = None
        state = verdicts.fire(review.state, "escalate", step.cause, *people)
        if PRIORITIES.index(step.priority) < PRIORITIES.index(review.priority):
            review.priority = step.priority
        if step.due_at is not None and (review.due_at is None or step.due_at < review.due_at):
            review.due_at = step.due_at
        review.updated_at, review.reminders_sent = now, 0
        events.append(_event("escalate", state, state, step.cause, step.comment, now, review.id))
    _insert_events(session, events)


class Verdicts:
    """The state machine's verdicts for the system actor (holding `roles`), asked once per (state, event, cause,
    people)."""

    def __init__(self, roles: frozenset[str]) -> None:
        self.roles = roles
        self.known: dict[tuple[Any, ...], str] = {}

    def fire(
        self, state: str, event: str, cause: str, reviewer: str, approver: str | None, reviewer_manager: str | None
    ) -> str:
        """The state `event` leads to, or RefusedError with the guard's reason."""
        key = (state, event, cause, reviewer, approver, reviewer_manager)
        if key not in self.known:
            content = machine.ReviewContent(account="", reviewer=reviewer, approver=approver)
            ctx = machine.Context(
                content=content, actor=SYSTEM_ACTOR, actor_roles=self.roles, now=datetime.min, cause=cause,
                reviewer_manager=reviewer_manager,
            )  # fmt: skip
            self.known[key] = machine.fire(state, event, ctx)
        return self.known[key]


def _raise(row: dict[str, Any], step: Raise) -> None:
    if PRIORITIES.index(step.priority) < PRIORITIES.index(row["priority"]):
        row["priority"] = step.priority
    if step.due_at is not None and step.due_at < row["due_at"]:
        row["due_at"] = step.due_at


def _event(
    event: str,
    before: str | None,
    after: str,
    cause: str,
    comment: str | None,
    now: datetime,
    review_id: int | None = None,
) -> dict[str, Any]:
    return {
        "review_id": review_id, "event": event, "from_state": before, "to_state": after, "actor": SYSTEM_ACTOR,
        "comment": comment, "at": now, "cause": cause,
    }  # fmt: skip


def _insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert audit rows and hand them to the hooks with their ids: a review's rows take its new ids in order
    (rows of one multi-row statement are numbered in the order they are listed)."""
    found: dict[int, list[int]] = {}
    for new_id, review_id in insert_returning(session, ReviewEvent, rows, "review_id"):
        found.setdefault(review_id, []).append(new_id)
    for ids in found.values():
        ids.sort(reverse=True)
    written(session, transient(ReviewEvent, [dict(row, id=found[row["review_id"]].pop()) for row in rows]))


def _approver_name(account: Account) -> str | None:
    """The owner's manager, else the account's manager (as `lifecycle` chooses for a review nobody named one for)."""
    owner = account.owner
    return (owner.manager_name if owner else None) or (account.manager.name if account.manager else None)


def _approver(users: dict[str, User], name: str | None, reviewer: str) -> str | None:
    if name is None:
        return None
    user = users.get(name)
    if user is None:
        raise NotFoundError(f"--approver: unknown user {name!r}")
    refused = approver_refusal(user, reviewer)
    if refused:
        raise InputError(refused)
    return name


def _users(people: People, names: Iterable[str | None], loaded: Iterable[User | None]) -> dict[str, User]:
    """Users by name: those already loaded, the rest of `names` through `people`."""
    users = {user.name: user for user in loaded if user is not None}
    missing = {name for name in names if name is not None and name not in users}
    users.update((user.name, user) for user in people.named(missing))
    return users


Baseline = tuple[float | None, str | None, dict[str, Any]]  # score, bucket, scorecard

# The latest snapshot of each account of a list (bound at execution): the statement is built once.
_SNAPSHOTS = table_of(ScoreSnapshot)
_CARD = ("as_of", "score", "bucket", "model_id", "provisional", "groups", "components")  # what a scorecard reads
_NEWEST = func.row_number().over(
    partition_by=_SNAPSHOTS.c.account_id, order_by=(_SNAPSHOTS.c.as_of.desc(), _SNAPSHOTS.c.id.desc())
)
_RANKED = (
    select(_SNAPSHOTS.c.account_id, *(_SNAPSHOTS.c[name] for name in _CARD), _NEWEST.label("n"))
    .where(among(_SNAPSHOTS.c.account_id, "ids"))
    .subquery()
)
_LATEST = select(_RANKED.c.account_id, *(_RANKED.c[name] for name in _CARD)).where(_RANKED.c.n == 1)


def _baselines(
    session: Session, account_ids: list[int], parsed: dict[int, tuple[str | None, ScoringModel | None]]
) -> dict[int, Baseline]:
    """The baseline of each account with a snapshot: its latest snapshot's score, bucket and scorecard, from the
    one query that finds the latest snapshots (each model read and parsed once, kept in `parsed`)."""
    found: dict[int, Baseline] = {}
    models = ModelCache(session)
    models.known = parsed
    for start in range(0, len(account_ids), CHUNK):
        for row in session.execute(_LATEST, {"ids": account_ids[start : start + CHUNK]}):
            found[row.account_id] = (row.score, row.bucket, snapshot_card(*models.get(row.model_id), row))
    return found
