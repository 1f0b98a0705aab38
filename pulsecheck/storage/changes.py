"""Has the book changed since a snapshot? The cheap question behind the live portfolio's kept figures.

PostgreSQL only: triggers (migration 0023) insert the id of every transaction that writes a table of the book
into `book_changes`. `mark` takes the current snapshot before the figures are computed (they then see at
least what it sees); `changed_since` asks whether a committed transaction is invisible to that snapshot, or
whether rows it would need were pruned. No shared counter row: writers never wait for each other, and a
transaction that commits after a later one is still seen (a maximum id would miss it)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

KEEP = 10_000  # rows of book_changes kept before `prune` drops the old ones

PROBE = text(
    "WITH mark AS (SELECT CAST(:mark AS pg_snapshot) AS snapshot, "
    "pg_snapshot_xmin(CAST(:mark AS pg_snapshot))::text::bigint AS xmin) "
    "SELECT EXISTS (SELECT 1 FROM book_changes, mark WHERE book_changes.xid >= mark.xmin "
    "AND NOT pg_visible_in_snapshot(book_changes.xid::text::xid8, mark.snapshot)) "
    "OR (SELECT upto FROM book_changes_pruned WHERE id = 1) >= (SELECT xmin FROM mark)"
)


def tracked(session: Session) -> bool:
    """Whether this database notes its book changes (PostgreSQL)."""
    return session.get_bind().dialect.name == "postgresql"


def mark(session: Session) -> str:
    """The current snapshot (as text), taken before reading what is to be kept."""
    return str(session.scalar(text("SELECT CAST(pg_current_snapshot() AS text)")))


def changed_since(session: Session, snapshot: str) -> bool:
    """Whether a transaction that wrote the book committed unseen by `snapshot` (or its trace was pruned)."""
    return bool(session.scalar(PROBE, {"mark": snapshot}))


def prune(session: Session, keep: int = KEEP) -> int:
    """Drop the rows of transactions every current snapshot sees, once more than `keep` have piled up, and note
    the newest dropped (kept figures from before it are computed again); how many rows were dropped."""
    if session.scalar(text("SELECT xid FROM book_changes ORDER BY xid OFFSET :keep LIMIT 1"), {"keep": keep}) is None:
        return 0
    count, upto = session.execute(
        text(
            "WITH gone AS (DELETE FROM book_changes WHERE xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint "
            "RETURNING xid) SELECT count(*), max(xid) FROM gone"
        )
    ).one()
    if upto is not None:
        session.execute(
            text("UPDATE book_changes_pruned SET upto = greatest(upto, :upto) WHERE id = 1"), {"upto": upto}
        )
    return int(count)
