"""Before-commit plumbing: let other layers add their writes to a transaction just before it commits."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from pulsecheck.storage.db import Database


def before_commit(
    database: Database,
    name: str,
    pick: Callable[[Session], list[Any]],
    handle: Callable[[Session, list[Any]], None],
) -> None:
    """After each flush, keep what `pick` finds among the session's new and changed objects; just before the
    transaction commits, hand them all to `handle`, which writes in the same transaction. A rollback forgets."""
    key = f"hook:{name}"

    @event.listens_for(database.sessions, "after_flush")
    def collect(session: Session, _context: Any) -> None:
        found = pick(session)
        if found:
            session.info.setdefault(key, {}).update((id(obj), obj) for obj in found)

    @event.listens_for(database.sessions, "before_commit")
    def run(session: Session) -> None:
        session.flush()
        found = session.info.pop(key, {})
        if found:
            handle(session, list(found.values()))

    @event.listens_for(database.sessions, "after_rollback")
    def forget(session: Session) -> None:
        session.info.pop(key, None)
