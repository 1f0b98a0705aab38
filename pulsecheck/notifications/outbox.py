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

from pulsecheck.notifications.render import render_each
from pulsecheck.storage.bulk import among, insert_ignoring, table_of, transient, upsert
from pulsecheck.storage.models import Account, Notification, Review, User

if TYPE_CHECKING:
    from pulsecheck.config import Settings


# The route key of each kind (`[notifications.routes]` takes a group or a kind itself).
KIND_GROUPS = {
    "escalation_opened": "escalation",
    "escalation_level_up": "escalation",
    "review_due": "reminder",
    "review_overdue": "reminder",
    "review_submitted": "review",
    "review_rejected": "review",
    "review_approved": "review",
    "review_opened": "review",
    "generic": "notice",
    "digest": "digest",
    "cycle_event": "cycle",
}


@dataclass(frozen=True)
class Routing:
    """Where notifications go (`[notifications]`): the channels per kind and severity (`routes`, else the one
    `channel`), the global role lists, and what messages show: times in `timezone`, links under `base_url`."""

    channel: str = "log"
    role_lists: Mapping[str, list[str]] = field(default_factory=dict)
    routes: Mapping[str, Mapping[str, list[str]]] = field(default_factory=dict)  # key -> {severity|default: channels}
    timezone: str = "UTC"
    base_url: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Routing:
        """The routing of validated settings: `[notifications]` channel, routes, roles and base_url, `[web]`."""
        notifications = settings.notifications
        routes = {key: dict(value) for key, value in notifications.routes.items()}
        return cls(
            notifications.channel,
            {role: list(names) for role, names in notifications.roles.items()},
            routes,
            settings.timezone,
            notifications.base_url_or(settings.web.base_url),
        )

    def channels(self, kind: str, severity: str | None = None) -> list[str]:
        """The channels of a `kind` notification (of `severity`): the kind's route, its group's, or `channel`."""
        route = self.routes.get(kind) or self.routes.get(KIND_GROUPS.get(kind, kind)) or {}
        channels = route.get(severity or "") or route.get("default")
        return list(channels) if channels else [self.channel]

    def shown(self, context: Mapping[str, Any], account: Account | None = None) -> dict[str, Any]:
        """`context` with what rendering needs from the settings (time zone, link base) and, given an `account`, its
        name and id (one dict made, in the order of `{**settings', **account's, **context}`)."""
        if account is None:
            return {"timezone": self.timezone, "base_url": self.base_url, **context}
        return {"timezone": self.timezone, "base_url": self.base_url, "account_name": account.name,
                "account_id": account.external_id, **context}

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
        recipients, rows = self._addressed(People(session), kind, roles, account, review, context, event_key, now)
        enqueue_rows(session, rows)
        return recipients

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
        return self._addressed(people, kind, roles, account, review, context, event_key, now)[1]

    def _addressed(
        self,
        people: People,
        kind: str,
        roles: Iterable[str],
        account: Account,
        review: Review | None,
        context: dict[str, Any],
        event_key: str,
        now: datetime,
    ) -> tuple[list[User], list[dict[str, Any]]]:
        """The people behind `roles` (read through `people`) and the outbox rows of a `kind` notice to them."""
        recipients = resolve_roles(people.session, roles, account, review, self.role_lists, people)
        context = self.shown(context, account)
        channels = self.channels(kind, context.get("severity"))
        return recipients, messages(kind, context, recipients, event_key, channels, now)


class People:
    """Users by name and the holders of global roles, each read once, in bulk, for the many notifications of a
    batch (a query per notification would dominate a large evaluate). `everyone` reads them all at once: for a
    whole evaluation run, whose batches then read no user again."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.users: dict[str, User | None] = {}
        self.holders: dict[str, list[str]] = {}
        self.ids: dict[int, User] = {}
        self.complete = False  # every user is known: a name not in `users` is nobody's

    @classmethod
    def everyone(cls, session: Session) -> People:
        """Every user, read in one query (by name, in the database's order) as plain objects outside the session:
        they may serve later transactions."""
        users = table_of(User)
        people = cls(session)
        found = session.execute(select(users).order_by(users.c.name)).mappings()
        people.know(transient(User, (dict(row) for row in found)))
        people.complete = True
        return people

    def know(self, users: Iterable[User | None]) -> None:
        """Users already loaded (an account's owner and manager)."""
        for user in users:
            if user is not None:
                self.users[user.name] = user
                self.ids[user.id] = user

    def with_ids(self, ids: Iterable[int]) -> dict[int, User]:
        """The users of `ids` that exist, by id; those not known yet are read in one query."""
        missing = sorted({user_id for user_id in ids if user_id not in self.ids})
        if missing:
            users = table_of(User)
            found = self.session.execute(select(users).where(among(users.c.id, values=missing)))
            self.know(transient(User, (dict(row) for row in found.mappings())))
        return self.ids

    def named(self, names: Iterable[str]) -> list[User]:
        """The users of `names` that exist, in that order; those not seen yet are read in one query."""
        wanted = list(names)
        missing = [] if self.complete else sorted({name for name in wanted if name not in self.users})
        if missing:
            self.users.update(dict.fromkeys(missing))
            self.know(self.session.scalars(select(User).where(among(User.name, values=missing))))
        users = self.users
        return [user for name in wanted if (user := users.get(name)) is not None]

    def holding(self, role: str) -> list[str]:
        """The names of the users holding `role`, by name."""
        if role not in self.holders:
            if self.complete:  # `everyone` read them by name
                self.holders[role] = [name for name, user in self.users.items() if user and role in user.role_set]
            else:
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
        elif role.startswith("user:"):  # one named person (an owner fallback); the admins if no such user
            name = role.removeprefix("user:")
            names.extend([name] if people.named([name]) else people.holding("admin"))
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
    channel: str | Sequence[str],
    now: datetime,
) -> int:
    """Render and store one notification per recipient and channel; returns how many were new (dedupe keeps the
    rest)."""
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
    channel: str | Sequence[str],
    now: datetime,
) -> list[dict[str, Any]]:
    """One rendered outbox row per recipient and channel, keyed by (event, recipient, channel). The addresses
    stored are a record of queue time: dispatch reads the user's current ones."""
    channels = [channel] if isinstance(channel, str) else channel
    addressees = [(user.name, user.email, user.webhook) for user in recipients]
    return addressed_rows(kind, context, addressees, event_key, channels, now)


Addressee = tuple[str, str | None, str | None]  # a recipient's name, email and webhook


def addressed_rows(
    kind: str,
    context: dict[str, Any],
    addressees: Sequence[Addressee],
    event_key: str,
    channels: Sequence[str],
    now: datetime,
) -> list[dict[str, Any]]:
    """`messages` for recipients given as their (name, email, webhook): what a caller holding users' rows rather
    than User objects has (the review notices' commit hook), without an object made per user to read three
    values."""
    if not addressees:
        return []
    plain = _plain(context)
    rendered = render_each(kind, context, [name for name, _, _ in addressees])  # once per notice, or per person
    return [
        {
            "dedupe_key": f"{event_key}:{name}:{channel}",
            "kind": kind,
            "channel": channel,
            "recipient": name,
            "subject": subject,
            "body": body,
            "payload": {"email": email, "webhook": webhook, "context": plain},
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }
        for (name, email, webhook), (subject, body) in zip(addressees, rendered, strict=True)
        for channel in channels
    ]


def _plain(context: Mapping[str, Any]) -> dict[str, Any]:
    """`context` for the payload's JSON: times as ISO text. A copy with its times replaced in place (the keys keep
    their order), rather than a comprehension that makes each entry again: a notice's context has one time or two."""
    plain = dict(context)
    for key, value in context.items():
        if isinstance(value, datetime):
            plain[key] = value.isoformat()
    return plain
