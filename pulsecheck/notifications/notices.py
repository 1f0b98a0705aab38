"""Notifications for review events: submitted (to the approver), rejected and approved (to the reviewer).

A session hook turns each new audit row of those events into outbox rows in the same transaction, whatever
wrote the event (the CLI, the demo, a scheduled job), with the audit row's id in the dedupe key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    from pulsecheck.storage.hooks import before_commit

    def events(session: Session) -> list[ReviewEvent]:
        return [obj for obj in session.new if isinstance(obj, ReviewEvent) and obj.event in NOTICES]

    def noticed(obj: object) -> bool:
        return isinstance(obj, ReviewEvent) and obj.event in NOTICES

    before_commit(database, "review-notices", events, lambda session, found: send(session, found, settings), noticed)


def send(session: Session, found: list[ReviewEvent], settings: Settings) -> None:
    from pulsecheck.notifications.outbox import Routing

    routing = Routing.from_settings(settings)
    for row in found:
        kind, role = NOTICES[row.event]
        review = row.review
        context = {
            "review_id": review.id,
            "actor": row.actor,
            "comment": row.comment,
            "priority": review.priority,
            "due_at": review.due_at,
        }
        routing.notify(session, kind, [role], review.account, review, context, f"review-event:{row.id}", row.at)
