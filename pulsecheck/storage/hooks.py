"""Before-commit plumbing: let other layers add their writes to a transaction just before it commits."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from pulsecheck.storage.db import Database

WRITTEN = "hook:written"  # session.info key: objects standing for rows written by Core statements


def written(session: Session, objects: Iterable[Any]) -> None:
    """Hand the hooks rows that a Core statement wrote (bulk work bypasses the unit of work, so no flush shows
    them), as transient model objects carrying the rows' values and ids; they join what the hooks see at commit."""
    session.info.setdefault(WRITTEN, []).extend(objects)


def hold(session: Session, key: str, value: Any) -> None:
    """Keep `value` in `session.info[key]` for the current transaction only (`held` gives it back in it)."""
    session.info[key] = (session.get_transaction(), value)


def held(session: Session, key: str, *, pop: bool = False) -> Any:
    """The value `hold` kept under `key` in this very transaction, else None (an earlier transaction's is stale);
    with `pop`, taken out."""
    kept = session.info.pop(key, None) if pop else session.info.get(key)
    return kept[1] if kept is not None and kept[0] is session.get_transaction() else None


def before_commit(
    database: Database,
    name: str,
    pick: Callable[[Session], list[Any]],
    handle: Callable[[Session, list[Any]], None],
    accept: Callable[[Any], bool] | None = None,
) -> None:
    """After each flush, keep what `pick` finds among the session's new and changed objects; just before the
    transaction commits, hand them all, and the `written` objects that `accept` takes, to `handle`, which writes
    in the same transaction. A rollback forgets."""
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
        if accept is not None:
            found.update((id(obj), obj) for obj in session.info.get(WRITTEN, ()) if accept(obj))
        if found:
            handle(session, list(found.values()))

    @event.listens_for(database.sessions, "after_rollback")
    def forget(session: Session) -> None:
        session.info.pop(key, None)

    if not event.contains(database.sessions, "after_commit", _forget_written):
        event.listen(database.sessions, "after_commit", _forget_written)
        event.listen(database.sessions, "after_rollback", _forget_written)


def _forget_written(session: Session, *_args: Any) -> None:
    session.info.pop(WRITTEN, None)
