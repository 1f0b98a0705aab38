"""The outbox as `outbox list` shows it, read on SQLAlchemy Core from the notifications table: a read command that
imports neither the ORM nor the dispatcher's channels (issue 17). Each function takes a connection or a session
(`Session.execute` runs a Core statement as a connection does)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from pulsecheck.errors import InputError
from pulsecheck.storage.more_tables import NOTIFICATIONS
from pulsecheck.storage.paging import Page, PageRequest, fetch_page

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

STATUSES = ("pending", "sent", "failed", "held", "digested")

_NOTE = NOTIFICATIONS.c
# What `notification_dict` reads: not the body nor the payload (the addresses), which a listing never shows.
_SHOWN = select(
    _NOTE.id, _NOTE.kind, _NOTE.channel, _NOTE.recipient, _NOTE.status, _NOTE.attempts, _NOTE.created_at,
    _NOTE.next_attempt_at, _NOTE.sent_at, _NOTE.last_error, _NOTE.subject, _NOTE.dedupe_key,
)  # fmt: skip
SORTS = {
    "newest": (_NOTE.id.desc(),),
    "oldest": (_NOTE.id,),
    "next-try": (_NOTE.next_attempt_at, _NOTE.id),
}


def notification_page(
    db: Session | Connection, request: PageRequest, status: str | None = None, recipient: str | None = None
) -> Page[dict[str, Any]]:
    """One page of outbox rows (newest first by default) in the `outbox list --json` shape."""
    if status is not None and status not in STATUSES:
        raise InputError(f"--status: expected one of {', '.join(STATUSES)}, got {status!r}")
    query = _SHOWN
    if status is not None:
        query = query.where(_NOTE.status == status)
    if recipient is not None:
        query = query.where(_NOTE.recipient == recipient)
    return fetch_page(db, query, request, SORTS, scalars=False).map(notification_dict)


def notification_dict(row: Row[Any]) -> dict[str, Any]:
    """The `outbox list --json` shape of one row (no body, no addresses); the next try only while one is due."""
    return {
        "id": row.id,
        "kind": row.kind,
        "channel": row.channel,
        "recipient": row.recipient,
        "status": row.status,
        "attempts": row.attempts,
        "created_at": row.created_at.isoformat(),
        "next_attempt_at": row.next_attempt_at.isoformat() if row.status == "pending" else None,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "last_error": row.last_error,
        "subject": row.subject,
        "dedupe_key": row.dedupe_key,
    }
