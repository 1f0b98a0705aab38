"""Notifications for review events: submitted (to the approver), rejected and approved (to the reviewer).

A session hook turns each new audit row of those events into outbox rows in the same transaction, whatever
wrote the event (the CLI, the demo, a scheduled job), with the audit row's id in the dedupe key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from pulsecheck.storage.models import ReviewEvent

if TYPE_CHECKING:
    from pulsecheck.config import Settings
    from pulsecheck.storage.db import Database

# event -> (notification kind, who hears of it)
NOTICES = {
    "submit": ("review_submitted", "approver"),
    "reject": ("review_rejected", "reviewer"),
    "approve": ("review_approved", "reviewer"),
}


def install(database: Database, settings: Settings) -> None:
    @event.listens_for(database.sessions, "after_flush")
    def collect(session: Session, _context: Any) -> None:
        found = [obj for obj in session.new if isinstance(obj, ReviewEvent) and obj.event in NOTICES]
        if found:
            session.info.setdefault("review_notices", []).extend(found)

    @event.listens_for(database.sessions, "before_commit")
    def enqueue(session: Session) -> None:
        session.flush()
        found: list[ReviewEvent] = session.info.pop("review_notices", [])
        if found:
            send(session, found, settings)

    @event.listens_for(database.sessions, "after_rollback")
    def forget(session: Session) -> None:
        session.info.pop("review_notices", None)


def send(session: Session, found: list[ReviewEvent], settings: Settings) -> None:
    from pulsecheck.notifications import outbox

    notifications = settings.section("notifications")
    channel, role_lists = str(notifications.get("channel", "log")), dict(notifications.get("roles", {}))
    for row in found:
        kind, role = NOTICES[row.event]
        review = row.review
        people = outbox.resolve_roles(session, [role], review.account, review, role_lists)
        context = {
            "account_name": review.account.name,
            "account_id": review.account.external_id,
            "review_id": review.id,
            "actor": row.actor,
            "comment": row.comment,
            "priority": review.priority,
            "due_at": review.due_at,
        }
        outbox.enqueue(session, kind, context, people, f"review-event:{row.id}", channel, row.at)
