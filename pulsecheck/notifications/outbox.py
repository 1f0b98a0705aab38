"""The outbox: notifications written in the same transaction as the event that causes them.

Roles resolve per account (owner, manager), per review (reviewer, approver) or globally (users holding a
role, or a `[notifications.roles]` list in config). A unique dedupe key per (event, recipient, channel)
means a notification is stored once and never sent twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.notifications.render import render
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


def resolve_roles(
    session: Session,
    roles: Iterable[str],
    account: Account | None,
    review: Review | None,
    role_lists: Mapping[str, list[str]],
) -> list[User]:
    """The people behind role names, without duplicates, in a stable order."""
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
            holders = session.scalars(select(User).where(User.roles.contains(role)).order_by(User.name))
            names.extend(u.name for u in holders if role in u.role_set)
    unique = list(dict.fromkeys(names))
    users = {u.name: u for u in session.scalars(select(User).where(User.name.in_(unique)))}
    return [users[n] for n in unique if n in users]


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
    rows = []
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
                "payload": {"email": user.email, "webhook": user.webhook, "context": _plain(context)},
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            }
        )
    stored = set(
        session.scalars(
            select(Notification.dedupe_key).where(Notification.dedupe_key.in_([r["dedupe_key"] for r in rows]))
        )
    )
    rows = [r for r in rows if r["dedupe_key"] not in stored]
    if not rows:
        return 0
    insert = dialect_insert(session, Notification).on_conflict_do_nothing(index_elements=["dedupe_key"])
    session.execute(insert, rows)  # a racing twin: no-op
    return len(rows)


def dialect_insert(session: Session, model: Any) -> Any:
    """The INSERT with ON CONFLICT of the session's dialect; a dialect's module is imported only when used (the
    PostgreSQL one costs a SQLite command tens of milliseconds at start-up)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model)


def _plain(context: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in context.items()}
