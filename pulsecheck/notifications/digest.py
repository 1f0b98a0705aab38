"""The alert budget and digests: beyond `[notifications] budget` messages per recipient, channel (email, webhook)
and day, or for a user who asked for a daily digest (`users set NAME --digest daily`, critical messages excepted),
a message is held; the first dispatch at or after `[notifications] digest_at` (business time zone) sends one digest
per recipient and channel that lists what was held, and marks those rows `digested`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from pulsecheck.notifications.render import render
from pulsecheck.storage.bulk import insert_ignoring
from pulsecheck.storage.models import Notification
from pulsecheck.storage.more_tables import NOTIFICATIONS
from pulsecheck.timeutil import start_of_day

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row

    from pulsecheck.config import Settings
    from pulsecheck.storage.db import Database

DIGEST = "digest"
# Channels that reach a person; the log and file channels are records, never held.
PEOPLE_CHANNELS = frozenset({"email", "webhook"})


class Budget:
    """Per dispatch pass: how many messages each (recipient, channel) got today, read once and counted on."""

    def __init__(self, settings: Settings, now: datetime) -> None:
        self.limit = settings.notifications.budget
        zone = ZoneInfo(settings.timezone)
        self.day_start = start_of_day(now.astimezone(zone).date(), zone)
        self.sent: dict[tuple[str, str], int] = {}

    def holds(self, conn: Connection, row: Row[Any]) -> bool:
        """Whether `row` waits for a digest instead of going out now."""
        if row.kind == DIGEST or row.channel not in PEOPLE_CHANNELS:
            return False
        context = (row.payload or {}).get("context") or {}
        if getattr(row, "current_digest", None) == "daily" and context.get("severity") != "critical":
            return True
        key = (row.recipient, row.channel)
        if key not in self.sent:
            count = select(func.count()).where(
                NOTIFICATIONS.c.recipient == row.recipient,
                NOTIFICATIONS.c.channel == row.channel,
                NOTIFICATIONS.c.status == "sent",
                NOTIFICATIONS.c.kind != DIGEST, NOTIFICATIONS.c.sent_at >= self.day_start,
            )  # fmt: skip
            self.sent[key] = int(conn.execute(count).scalar_one())
        return self.sent[key] >= self.limit

    def count(self, row: Row[Any]) -> None:
        """One more message sent to the row's recipient on its channel."""
        key = (row.recipient, row.channel)
        self.sent[key] = self.sent.get(key, 0) + 1


def make_digests(database: Database, settings: Settings, now: datetime) -> int:
    """At or after today's digest time: one pending digest per (recipient, channel) with held messages; returns
    how many were queued (a digest per recipient, channel and day at most: its dedupe key says so)."""
    zone = ZoneInfo(settings.timezone)
    local = now.astimezone(zone)
    if local.time() < time(settings.notifications.digest_at.hour, settings.notifications.digest_at.minute):
        return 0
    with database.engine.connect() as conn:  # a read first: most passes find nothing held and write nothing
        if conn.execute(select(NOTIFICATIONS.c.id).where(NOTIFICATIONS.c.status == "held").limit(1)).first() is None:
            return 0
    with database.transaction() as session:
        held_rows = select(NOTIFICATIONS).where(NOTIFICATIONS.c.status == "held").order_by(NOTIFICATIONS.c.id)
        held = session.execute(held_rows).all()
        groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for row in held:
            groups[(row.recipient, row.channel)].append(row)
        rows = [_digest(who, channel, items, local, settings, now) for (who, channel), items in groups.items()]
        insert_ignoring(session, Notification, rows, "dedupe_key")
        ids = [row.id for row in held]
        session.execute(
            update(NOTIFICATIONS)
            .where(NOTIFICATIONS.c.id.in_(ids), NOTIFICATIONS.c.status == "held")
            .values(status="digested")
        )
    return len(rows)


def _digest(
    recipient: str, channel: str, items: list[Any], local: datetime, settings: Settings, now: datetime
) -> dict[str, Any]:
    """The outbox row of one digest: the held messages' subjects, oldest first."""
    base = settings.notifications.base_url_or(settings.web.base_url)
    context = {
        "recipient_name": recipient, "count": len(items), "items": [row.subject for row in items],
        "day": local.date().isoformat(), "timezone": settings.timezone, "base_url": base,
    }  # fmt: skip
    subject, body = render(DIGEST, context)
    critical = any(((row.payload or {}).get("context") or {}).get("severity") == "critical" for row in items)
    plain = {"count": len(items), "ids": [row.id for row in items], "severity": "critical" if critical else None}
    return {
        "dedupe_key": f"digest:{recipient}:{channel}:{local.date().isoformat()}",
        "kind": DIGEST, "channel": channel, "recipient": recipient, "subject": subject, "body": body,
        "payload": {"email": None, "webhook": None, "context": plain}, "status": "pending", "attempts": 0,
        "created_at": now, "next_attempt_at": now,
    }  # fmt: skip
