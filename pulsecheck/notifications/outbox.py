"""The outbox: notifications written in the same transaction as the event that causes them.

Roles resolve per account (owner, manager), per review (reviewer, approver) or globally (users holding a
role, or a `[notifications.roles]` list in config). A unique dedupe key per (event, recipient, channel)
means a notification is stored once and never sent twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.notifications.render import render
from pulsecheck.storage.bulk import insert_ignoring, upsert
from pulsecheck.storage.models import Account, Notification, Review, User

if TYPE_CHECKING:
    from pulsecheck.config import Settings


@dataclass(frozen=True)
class Routing:
    """Where notifications go (`[notifications]`): the channel of new ones and the global role lists."""

    channel: str = "log"
    role_lists: Mapping[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Routing:
        """The routing of validated settings: `[notifications] channel` and `[notifications.roles]`."""
        notifications = settings.notifications
        return cls(notifications.channel, {role: list(names) for role, names in notifications.roles.items()})

    def notify(
        self,
        session: Session,
        kind: str,
        roles: Iterable[str],
        account: Account,
        review: Review | None,
        context: dict[str, Any],
        event_key: str,
        now: datetime,
    ) -> list[User]:
        """Write a `kind` notification about `account` for the people behind `roles`; returns them."""
        people = resolve_roles(session, roles, account, review, self.role_lists)
        context = {"account_name": account.name, "account_id": account.external_id, **context}
        enqueue(session, kind, context, people, event_key, self.channel, now)
        return people

    def messages(
        self,
        people: People,
        kind: str,
        roles: Iterable[str],
        account: Account,
        review: Review | None,
        context: dict[str, Any],
        event_key: str,
        now: datetime,
    ) -> list[dict[str, Any]]:
        """The outbox rows `notify` would write, without writing them (for `enqueue_rows`, many at once)."""
        recipients = resolve_roles(people.session, roles, account, review, self.role_lists, people)
        context = {"account_name": account.name, "account_id": account.external_id, **context}
        return messages(kind, context, recipients, event_key, self.channel, now)


class People:
    """Users by name and the holders of global roles, each read once, in bulk, for the many notifications of a
    batch (a query per notification would dominate a large evaluate)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.users: dict[str, User | None] = {}
        self.holders: dict[str, list[str]] = {}

    def know(self, users: Iterable[User | None]) -> None:
        """Users already loaded (an account's owner and manager)."""
        self.users.update((user.name, user) for user in users if user is not None)

    def named(self, names: Iterable[str]) -> list[User]:
        """The users of `names` that exist, in that order; those not seen yet are read in one query."""
        wanted = list(names)
        missing = sorted({name for name in wanted if name not in self.users})
        if missing:
            self.users.update(dict.fromkeys(missing))
            self.know(self.session.scalars(select(User).where(User.name.in_(missing))))
        return [user for name in wanted if (user := self.users.get(name)) is not None]

    def holding(self, role: str) -> list[str]:
        """The names of the users holding `role`, by name."""
        if role not in self.holders:
            found = self.session.scalars(select(User).where(User.roles.contains(role)).order_by(User.name))
            self.holders[role] = [user.name for user in found if role in user.role_set]
        return self.holders[role]


def resolve_roles(
    session: Session,
    roles: Iterable[str],
    account: Account | None,
    review: Review | None,
    role_lists: Mapping[str, list[str]],
    people: People | None = None,
) -> list[User]:
    """The people behind role names, without duplicates, in a stable order (read through `people` if given)."""
    people = people or People(session)
    names: list[str] = []
    for role in roles:
        if role == "owner" and account is not None and account.owner is not None:
            names.append(account.owner.name)
        elif role == "manager" and account is not None and account.manager is not None:
            names.append(account.manager.name)
        elif role == "reviewer" and review is not None:
            names.append(review.reviewer)
        elif role == "approver" and review is not None and review.approver:
            names.append(review.approver)
        elif role in role_lists:
            names.extend(role_lists[role])
        else:  # everyone holding the role (manager without an account, ops, admin, head_of_cs, ...)
            names.extend(people.holding(role))
    return people.named(dict.fromkeys(names))


def enqueue(
    session: Session,
    kind: str,
    context: dict[str, Any],
    recipients: Iterable[User],
    event_key: str,
    channel: str,
    now: datetime,
) -> int:
    """Render and store one notification per recipient; returns how many were new (dedupe keeps the rest)."""
    rows = messages(kind, context, recipients, event_key, channel, now)
    if not rows:
        return 0
    insert = upsert(session, Notification).on_conflict_do_nothing(index_elements=["dedupe_key"])
    return len(session.execute(insert.returning(Notification.id), rows).all())


def enqueue_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Store rendered notifications (`messages`) in multi-row statements; the unique dedupe key keeps a message
    stored once (INSERT ... ON CONFLICT DO NOTHING: no lookup per row, whose plan could degrade as the table
    grows)."""
    insert_ignoring(session, Notification, rows, "dedupe_key")


def messages(
    kind: str,
    context: dict[str, Any],
    recipients: Iterable[User],
    event_key: str,
    channel: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """One rendered outbox row per recipient, keyed by (event, recipient, channel)."""
    rows = []
    plain = _plain(context)
    for user in recipients:
        subject, body = render(kind, dict(context, recipient_name=user.name))
        rows.append(
            {
                "dedupe_key": f"{event_key}:{user.name}:{channel}",
                "kind": kind,
                "channel": channel,
                "recipient": user.name,
                "subject": subject,
                "body": body,
                "payload": {"email": user.email, "webhook": user.webhook, "context": plain},
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            }
        )
    return rows


def _plain(context: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in context.items()}
