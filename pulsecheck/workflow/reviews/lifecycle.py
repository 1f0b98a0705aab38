"""A review's lifecycle: open it (baseline from the latest snapshot, four-eyes approver), and move it through the
state machine (submit, approve, reject, reopen, escalate, close, withdraw) with its guards, signatures and one
audit row per event."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import bindparam, inspect, select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from pulsecheck.errors import InputError, NotFoundError, RefusedError
from pulsecheck.states import permissions
from pulsecheck.states import review as machine
from pulsecheck.storage.bulk import connection_of, persistent, transient
from pulsecheck.storage.hooks import written
from pulsecheck.storage.models import Account, MitigationAction, Review, ReviewEvent, ScoreSnapshot, User
from pulsecheck.vocab import PRIORITIES
from pulsecheck.workflow.accounts import get_account
from pulsecheck.workflow.reviews import rows
from pulsecheck.workflow.reviews.views import content_of, get_review
from pulsecheck.workflow.scorecards import baseline_of
from pulsecheck.workflow.users import get_user

SYSTEM_ACTOR = "pulsecheck"


# What an event's guards and signatures read, in statements built once: the review, its account and risks
# (joined) and its reviewer's manager (the permission table's `reviewer_manager`) in one SELECT; its actions in a
# second, plain one, so that risks x actions rows never multiply (selectinload would do the same with three
# times the Python work).
_FOR_EVENT = (
    select(Review, User.manager_name)
    .outerjoin(User, User.name == Review.reviewer)
    .where(Review.id == bindparam("review_id"))
    .options(joinedload(Review.account), joinedload(Review.risks))
)
_ACTIONS = (
    select(MitigationAction)
    .where(MitigationAction.review_id == bindparam("review_id"))
    .order_by(MitigationAction.number)
)
_MANAGER_OF = select(User.manager_name).where(User.name == bindparam("name"))


def _review_for_event(session: Session, review_id: int) -> tuple[Review, str | None]:
    """A review with what its guards and signatures read, and its reviewer's manager; or a not-found error."""
    row = session.execute(_FOR_EVENT, {"review_id": review_id}).unique().first()
    if row is None:
        raise NotFoundError(f"unknown review {review_id}")
    review = row[0]
    if "actions" not in inspect(review).dict:  # not loaded (or changed) in this session already
        set_committed_value(review, "actions", list(session.scalars(_ACTIONS, {"review_id": review_id})))
    return review, row[1]


def open_review_for(session: Session, account_id: int) -> Review | None:
    """The account's review that is not closed yet, if any."""
    return session.scalar(
        select(Review)
        .where(Review.account_id == account_id, Review.state != "closed")
        .order_by(Review.id.desc())
        .limit(1)
    )


def new_review(
    session: Session,
    account_ref: str,
    actor: User | str,
    now: datetime,
    due_in: timedelta,
    reviewer: str | None = None,
    approver: str | None = None,
    due: datetime | None = None,
    kind: str = "manual",
    priority: str = "P3",
    cause: str = "user",
) -> Review:
    """Open a draft review of an account; its baseline is the scorecard of the account's latest snapshot."""
    name, roles = _name_and_roles(session, actor)
    account = get_account(session, account_ref)
    existing = open_review_for(session, account.id)
    if existing is not None:
        raise RefusedError(f"account {account.external_id} already has review {existing.id} ({existing.state})")
    reviewer_name, approver_name = _people(session, account, name, reviewer, approver)
    if due is not None and due <= now:
        raise InputError(f"--due {due.date()}: must be in the future")
    if priority not in PRIORITIES:
        raise InputError(f"priority {priority!r}: choose from {', '.join(PRIORITIES)}")
    snapshot = session.scalar(
        select(ScoreSnapshot)
        .where(ScoreSnapshot.account_id == account.id)
        .order_by(ScoreSnapshot.as_of.desc())
        .limit(1)
    )
    review = Review(
        account=account,
        state=machine.NEW,
        kind=kind,
        reviewer=reviewer_name,
        approver=approver_name,
        priority=priority,
        due_at=due or now + due_in,
        created_at=now,
        updated_at=now,
        baseline_score=snapshot.score if snapshot else None,
        baseline_bucket=snapshot.bucket if snapshot else None,
        baseline=baseline_of(session, snapshot),
    )
    session.add(review)
    _apply(session, review, "open", name, now, roles=roles, cause=cause)
    return review


def _name_and_roles(session: Session, actor: User | permissions.Actor | str) -> tuple[str, frozenset[str]]:
    """The acting name and roles: a User or the permission table's Actor as given; a name (the scheduler's, a
    rule's, a script's) with the roles of the user of that name, if any."""
    if isinstance(actor, permissions.Actor):
        return actor.name, actor.roles
    if isinstance(actor, str):
        user = session.scalar(select(User).where(User.name == actor))
        return actor, frozenset(user.role_set if user else ())
    return actor.name, frozenset(actor.role_set)


def check_approver(session: Session, approver: str, reviewer: str, what: str = "--approver") -> User:
    """The user `approver` if they may approve `reviewer`'s review: one the permission table lets approve as the
    assigned approver, and never the reviewer (four-eyes)."""
    user = get_user(session, approver, what=what)
    refused = approver_refusal(user, reviewer, what)
    if refused:
        raise InputError(refused)
    return user


def approver_refusal(user: User, reviewer: str, what: str = "--approver") -> str | None:
    """Why `user` may not approve `reviewer`'s review (four-eyes, the permission table), or None."""
    if user.name == reviewer:
        return f"{what}: {user.name} is also the reviewer (four-eyes)"
    who = permissions.actor(user.name, user.role_set, {"its_approver": user.name, "its_reviewer": reviewer})
    if not permissions.allowed("review.approve", who):
        return f"{what}: {user.name} does not have the manager role"
    return None


def _people(
    session: Session, account: Account, actor: str, reviewer: str | None, approver: str | None
) -> tuple[str, str | None]:
    """(reviewer, approver) of a new review: as given, else the account owner (or the actor) and the reviewer's or
    the account's manager; the approver must be a manager other than the reviewer (four-eyes)."""
    reviewer_name = reviewer or (account.owner.name if account.owner else None) or actor
    reviewer_user = get_user(session, reviewer_name, what="--reviewer")
    approver_name = approver or reviewer_user.manager_name or (account.manager.name if account.manager else None)
    if approver_name is not None:
        check_approver(session, approver_name, reviewer_name)
    return reviewer_name, approver_name


class _Unread:
    """`_apply`'s default for a reviewer's manager the caller has not read (None is a real answer: no manager)."""


_UNREAD = _Unread()


def _apply(
    session: Session,
    review: Review,
    event: str,
    actor: str,
    now: datetime,
    roles: frozenset[str],
    comment: str | None = None,
    cause: str = "user",
) -> None:
    """Fire `event` on `review` and record it on the object: the new state, signatures, and one audit row,
    unflushed (the commit's hooks flush once, and a query of this session autoflushes first)."""
    changes, row = _decide(session, review, event, actor, now, roles, comment, cause)
    _record(session, review, changes, row)


def _decide(
    session: Session,
    review: Review,
    event: str,
    actor: str,
    now: datetime,
    roles: frozenset[str],
    comment: str | None = None,
    cause: str = "user",
    reviewer_manager: str | None | _Unread = _UNREAD,
    preset: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ask the state machine about `event` on `review` (refused: RefusedError with the guard's reason), changing
    nothing; the review's new values and its audit row (without the review's id). `preset` holds template values
    the event sets first (approve's comment), which the guards and signatures see. `reviewer_manager` is read
    here unless the caller has it."""
    if isinstance(reviewer_manager, _Unread):
        reviewer_manager = session.scalar(_MANAGER_OF, {"name": review.reviewer})
    with session.no_autoflush:  # reading the content (its attachments) must not write the review half-changed
        content = content_of(review)
    before = _Before(review.state, content, review.employee_digest, review.manager_digest, reviewer_manager)
    return _verdict(before, event, actor, now, roles, comment, cause, preset)


class _Before(NamedTuple):
    """What an event is decided on besides who does it: the review's state, its template, its signatures'
    digests, and its reviewer's manager."""

    state: str
    content: machine.ReviewContent
    employee_digest: str | None
    manager_digest: str | None
    reviewer_manager: str | None


def _verdict(
    before: _Before,
    event: str,
    actor: str,
    now: datetime,
    roles: frozenset[str],
    comment: str | None,
    cause: str,
    preset: dict[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The state machine's verdict on `event` (refused: RefusedError with the guard's reason): the review's new
    values and its audit row (without the review's id)."""
    content = replace(before.content, **preset) if preset else before.content
    ctx = machine.Context(
        content=content,
        actor=actor,
        actor_roles=roles,
        now=now,
        comment=comment,
        cause=cause,
        employee_digest=before.employee_digest,
        manager_digest=before.manager_digest,
        reviewer_manager=before.reviewer_manager,
    )
    after = machine.fire(before.state, event, ctx)
    changes: dict[str, Any] = dict(preset or {}, state=after, updated_at=now)
    if event == "submit":
        changes |= {"employee_signed_by": actor, "employee_signed_at": now}
        changes["employee_digest"] = machine.employee_digest(ctx.content)
    elif event == "approve":
        changes |= {"manager_signed_by": actor, "manager_signed_at": now}
        changes["manager_digest"] = machine.manager_digest(ctx.content)
    elif event in ("reject", "reopen"):
        changes |= dict.fromkeys(SIGNATURE_FIELDS)
    if before.state != after or event == "escalate":
        changes["reminders_sent"] = 0
    row = {
        "event": event,
        "from_state": None if before.state == machine.NEW else before.state,
        "to_state": after,
        "actor": actor,
        "comment": comment,
        "at": now,
        "cause": cause,
    }
    return changes, row


SIGNATURE_FIELDS = (
    "employee_signed_by",
    "employee_signed_at",
    "employee_digest",
    "manager_signed_by",
    "manager_signed_at",
    "manager_digest",
)


def _record(session: Session, review: Review, changes: dict[str, Any], row: dict[str, Any]) -> None:
    """Set a decided event's values on the review and add its audit row, for the unit of work to write."""
    if review.id is None:
        session.flush()  # the audit row needs the review's id
    for name, value in changes.items():
        setattr(review, name, value)
    session.add(ReviewEvent(review_id=review.id, **row))


def _write(session: Session, review: Review, changes: dict[str, Any], row: dict[str, Any]) -> None:
    """Write a decided event of a loaded review at once with two Core statements, not a unit-of-work flush (see
    `rows.update_review`). The loaded review takes the values as committed, and both go to the commit hooks (jobs,
    notices, the audit chain) as `hooks.written` rows: the same rows and chain entries a flush would have
    produced."""
    version = review.version_id
    rows.update_review(session, review.id, version, changes)
    for name, value in changes.items():
        set_committed_value(review, name, value)
    set_committed_value(review, "version_id", version + 1)
    row = row | {"review_id": review.id}
    event_id = rows.insert_event(session, row)
    audit_row = transient(ReviewEvent, [row | {"id": event_id, "review": review}])
    written(session, [audit_row[0], review])


def transition(
    session: Session,
    review_id: int,
    event: str,
    actor: User | permissions.Actor | str,
    now: datetime,
    comment: str | None = None,
    cause: str = "user",
) -> Review:
    """Fire `event` on a review as `actor`; refused events raise with the guard's reason. Returns the review,
    persistent in the session."""
    moved = _fire(session, review_id, event, actor, now, comment, cause)
    return moved if isinstance(moved, Review) else persistent(session, Review, moved)


def advance(
    session: Session,
    review_id: int,
    event: str,
    actor: User | permissions.Actor | str,
    now: datetime,
    comment: str | None = None,
    cause: str = "user",
) -> str:
    """`transition` for a caller that needs only the review's new state (a command reporting it, a form sending
    the browser back to the review): a review the session has not loaded moves as rows, and no object of it is
    made after (attaching one to the session and detaching it at the end cost a tenth of such a transition)."""
    moved = _fire(session, review_id, event, actor, now, comment, cause)
    return moved.state if isinstance(moved, Review) else str(moved["state"])


def _fire(
    session: Session,
    review_id: int,
    event: str,
    actor: User | permissions.Actor | str,
    now: datetime,
    comment: str | None,
    cause: str,
) -> Review | dict[str, Any]:
    """`transition`'s work: the loaded review moved, or the column values of a review moved as rows."""
    name, roles = _name_and_roles(session, actor)
    if _unloaded(session, review_id):
        return _transition_rows(session, review_id, event, name, roles, now, comment, cause)
    review, reviewer_manager = _review_for_event(session, review_id)
    preset = _preset(event, comment, review.manager_comments)
    changes, row = _decide(session, review, event, name, now, roles, comment, cause, reviewer_manager, preset)
    if changes["state"] != review.state and not inspect(review).modified:
        _write(session, review, changes, row)  # the common case: a clean review moves (its chain entry is due)
    else:
        _record(session, review, changes, row)  # a review changed in this session, or one keeping its state
    return review


def _preset(event: str, comment: str | None, manager_comments: str | None) -> dict[str, Any]:
    """Template values the event sets first: `approve --comment` fills the manager's comments if empty."""
    if event == "approve" and comment and not (manager_comments or "").strip():
        return {"manager_comments": comment}
    return {}


def _unloaded(session: Session, review_id: int) -> bool:
    """Whether the session neither holds the review nor has anything unflushed (which reads on its connection
    would miss): then the review is read and written as rows. The review's identity key is spelled out (as
    `identity_key` makes it: class, primary key, no token) and `session.dirty` is asked of the identity map once
    nothing is deleted (what it lists then), without the sets both build (they cost more than the rest)."""
    return (
        (_review_class(), (review_id,), None) not in session.identity_map
        and not session.new
        and not session.deleted
        and not session.identity_map.check_modified()
    )


@cache
def _review_class() -> type[Any]:
    """The class a review's identity key names (its mapper's base class: Review)."""
    return identity_key(Review, 0)[0]


def _transition_rows(
    session: Session,
    review_id: int,
    event: str,
    actor: str,
    roles: frozenset[str],
    now: datetime,
    comment: str | None,
    cause: str,
) -> Review | dict[str, Any]:
    """`transition` of a review the session has not loaded: read and written as rows (`rows`), with the same
    verdict, rows and audit chain entries; the review's column values as they now are (or the review, loaded, for
    an event that keeps its state)."""
    connection = connection_of(session)  # one look-up for the read and both writes (some 15 k instructions each)
    found = rows.read(session, review_id, connection)
    if found is None:
        raise NotFoundError(f"unknown review {review_id}")
    values = found.review
    preset = _preset(event, comment, values["manager_comments"])
    before = _Before(
        values["state"], found.content, values["employee_digest"], values["manager_digest"], found.reviewer_manager
    )
    changes, row = _verdict(before, event, actor, now, roles, comment, cause, preset)
    if changes["state"] == values["state"]:  # an event keeping the state (escalate, reassign): the loaded path
        review, _ = _review_for_event(session, review_id)
        _record(session, review, changes, row)
        return review
    return rows.write(session, found, changes, row, connection)


def reassign(session: Session, review_id: int, approver: str, actor: User, now: datetime, comment: str) -> Review:
    """Move a review to another approver (the reviewer's manager or an admin, with a comment; audited as a
    `reassign` event that keeps the state); a signed-off approval is not moved, and the reviewer never approves."""
    review = get_review(session, review_id)
    check_approver(session, approver, review.reviewer)
    if approver == review.approver:
        raise RefusedError(f"review {review.id}: {approver} is already the approver")
    said = f"approver {review.approver or '-'} -> {approver}: {comment.strip()}" if comment.strip() else comment
    _apply(session, review, "reassign", actor.name, now, frozenset(actor.role_set), said)
    review.approver = approver
    session.flush()
    return review


def escalate(
    session: Session,
    review: Review,
    now: datetime,
    priority: str,
    due_at: datetime | None,
    cause: str,
    comment: str,
) -> None:
    """Raise a review's priority and pull its due date in (never push it out)."""
    if PRIORITIES.index(priority) < PRIORITIES.index(review.priority):
        review.priority = priority
    if due_at is not None and (review.due_at is None or due_at < review.due_at):
        review.due_at = due_at
    _apply(session, review, "escalate", SYSTEM_ACTOR, now, frozenset(), comment, cause)
