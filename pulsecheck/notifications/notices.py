"""Notifications for review events: submitted (to the approver), rejected and approved (to the reviewer); and for
portfolio review cycle events: submitted (to the owner's manager, else every manager), rejected and approved (to
the cycle's owner).

A session hook turns each new audit row of those events into outbox rows in the same transaction, whatever
wrote the event (the CLI, the demo, a scheduled job), with the audit row's id in the dedupe key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from pulsecheck.storage.hooks import held, hold
from pulsecheck.storage.models import ReviewEvent, User, declared
from pulsecheck.storage.tables import USERS

if TYPE_CHECKING:
    from pulsecheck.config import Settings
    from pulsecheck.storage.db import Database
    from pulsecheck.storage.models import CycleEvent

# event -> (notification kind, who hears of it)
NOTICES = {
    "submit": ("review_submitted", "approver"),
    "reject": ("review_rejected", "reviewer"),
    "approve": ("review_approved", "reviewer"),
}
CYCLE_KIND = "cycle_event"
CYCLE_NOTICES = {"submit": "submitted", "reject": "rejected", "approve": "approved"}  # event -> word in the message


def install(database: Database, settings: Settings) -> None:
    from pulsecheck.storage.hooks import before_commit

    def events(session: Session) -> list[ReviewEvent]:
        if _KNOWN_USERS in session.info and any(
            isinstance(obj, User) for obj in (*session.new, *session.dirty, *session.deleted)
        ):
            del session.info[_KNOWN_USERS]  # a user written since: read them at commit
        return [obj for obj in session.new if isinstance(obj, ReviewEvent) and obj.event in NOTICES]

    def noticed(obj: object) -> bool:
        return isinstance(obj, ReviewEvent) and obj.event in NOTICES

    sender: list[Callable[[Session, list[ReviewEvent]], None]] = []  # made at the first commit that sends a notice

    def send_review(session: Session, found: list[ReviewEvent]) -> None:
        if not sender:
            sender.append(_sender(settings))
        sender[0](session, found)

    before_commit(database, "review-notices", events, send_review, noticed)

    def cycle_events(session: Session) -> list[CycleEvent]:
        kinds = declared("CycleEvent")  # none before its class is declared: a command that wrote none declares none
        return [obj for obj in session.new if isinstance(obj, kinds) and obj.event in CYCLE_NOTICES]

    before_commit(database, "cycle-notices", cycle_events, lambda session, found: send_cycle(session, found, settings))


# The users a commit's review notices go to, read on the session's connection with a statement built once (the
# hook runs after the commit's flush: nothing is pending) as rows of what a notice reads of them.
USER_COLUMNS = ("name", "email", "webhook")  # what a row handed to `know_users` must hold, at least
_USER_NAMED = select(*(USERS.c[name] for name in USER_COLUMNS)).where(USERS.c.name == bindparam("name"))


_KNOWN_USERS = "notices:users"  # session.info (`hooks.hold`): users' rows by name read earlier (`know_users`)


def know_users(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """Users' rows that this transaction has read (a review transition reads its reviewer and approver), each with
    `USER_COLUMNS` at least, for the commit's notices to go to without reading them again; forgotten if the
    transaction then writes a user."""
    known: dict[str, dict[str, Any]] | None = held(session, _KNOWN_USERS)
    if known is None:
        hold(session, _KNOWN_USERS, known := {})
    known.update((row["name"], row) for row in rows)


def _sender(settings: Settings) -> Callable[[Session, list[ReviewEvent]], None]:
    """`send` with the settings' routing, made once per App at its first notice: the outbox is imported then (not at
    start-up, and not at every commit: an import statement run per call costs a tenth of a notice's rendering)."""
    from pulsecheck.notifications.outbox import Routing, addressed_rows, enqueue_rows

    routing = Routing.from_settings(settings)
    # What `Routing.messages` works out per notice from the settings alone: the channels of each kind (a review
    # event's context has no severity)
    channels = {kind: routing.channels(kind) for kind, _ in NOTICES.values()}

    def send(session: Session, found: list[ReviewEvent]) -> None:
        """One notice per submit, reject and approve of a review, to its approver or reviewer (as
        `Routing.messages` would address it: the user of that name, if any); the outbox rows of every event of the
        commit written in one statement."""
        users: dict[str, dict[str, Any] | None] = held(session, _KNOWN_USERS, pop=True) or {}  # and those read here
        outbox: list[dict[str, Any]] = []
        for row in found:
            event, review, event_id, actor, comment, at = _loaded(row, _EVENT_READS)
            kind, role = NOTICES[event]
            review_id, reviewer, approver, priority, due_at, account = _loaded(review, _REVIEW_READS)
            name = reviewer if role == "reviewer" else approver or None  # none if blank (resolve_roles)
            if name is None:
                continue
            if name not in users:
                users[name] = _user(session, name)
            user = users[name]
            if user is None:
                continue
            context = {"review_id": review_id, "actor": actor, "comment": comment, "priority": priority,
                       "due_at": due_at}
            outbox += addressed_rows(kind, routing.shown(context, account),
                                     [(user["name"], user["email"], user["webhook"])], f"review-event:{event_id}",
                                     channels[kind], at)
        enqueue_rows(session, outbox)

    return send


_EVENT_READS = ("event", "review", "id", "actor", "comment", "at")
_REVIEW_READS = ("id", "reviewer", "approver", "priority", "due_at", "account")


def _loaded(obj: object, keys: tuple[str, ...]) -> list[Any]:
    """The values of attributes `keys` of a mapped object, as the attributes give them: the value the object holds
    (in its `__dict__`, where SQLAlchemy's attribute finds a loaded one), else through the attribute (which loads
    it). Without the attribute's descriptor call per value: a commit hook's events are rows already read."""
    held = obj.__dict__
    return [held[key] if key in held else getattr(obj, key) for key in keys]


def _user(session: Session, name: str) -> dict[str, Any] | None:
    """The row of user `name` (None: no such user), for a notice the transaction has not read it for
    (`know_users`)."""
    found = session.connection().execute(_USER_NAMED, {"name": name}).mappings().first()
    return None if found is None else dict(found)


def send_cycle(session: Session, found: list[CycleEvent], settings: Settings) -> None:
    """One `cycle_event` notice per submit, reject and approve of a cycle, to whoever acts next on it."""
    from pulsecheck.notifications.outbox import Routing, enqueue_rows, messages, resolve_roles
    from pulsecheck.storage.models import ReviewCycle

    routing = Routing.from_settings(settings)
    for row in sorted(found, key=lambda event: event.id):
        cycle = session.get(ReviewCycle, row.cycle_id)
        if cycle is None:
            continue
        if row.event == "submit":
            manager = session.scalar(select(User.manager_name).where(User.name == cycle.owner))
            roles = [f"user:{manager}"] if manager else ["manager"]
        else:
            roles = [f"user:{cycle.owner}"]
        people = [p for p in resolve_roles(session, roles, None, None, routing.role_lists) if p.name != row.actor]
        context = {"cycle_id": cycle.id, "period": cycle.period, "event": CYCLE_NOTICES[row.event],
                   "actor": row.actor, "comment": row.comment}
        rows = messages(CYCLE_KIND, routing.shown(context), people, f"cycle-event:{row.id}",
                        routing.channels(CYCLE_KIND), row.at)
        enqueue_rows(session, rows)
