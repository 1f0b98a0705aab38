"""Claiming outbox rows for one dispatcher: PostgreSQL locks them (`FOR UPDATE SKIP LOCKED`) until the outcome
commits; SQLite claims under its write lock with a lease, so that the lock is not held while a channel waits on
the network. Several rows may be claimed at once (a batch to one webhook URL): their outcomes commit together."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, exists, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import OperationalError

from pulsecheck.errors import ConflictError
from pulsecheck.storage.more_tables import NOTIFICATIONS
from pulsecheck.storage.tables import USERS

# The recipient's addresses as they are at send time (a fixed email then `outbox retry` reaches them); scalar
# subqueries rather than a join, so that PostgreSQL's FOR UPDATE locks only the outbox row.
_CURRENT = [
    select(USERS.c[name]).where(USERS.c.name == NOTIFICATIONS.c.recipient).scalar_subquery().label(f"current_{name}")
    for name in ("email", "webhook", "chat_handle", "digest")
] + [exists().where(USERS.c.name == NOTIFICATIONS.c.recipient).label("recipient_is_user")]
NEXT_DUE = (
    select(NOTIFICATIONS, *_CURRENT)
    .where(
        NOTIFICATIONS.c.id > bindparam("after"),
        NOTIFICATIONS.c.status == "pending",
        NOTIFICATIONS.c.next_attempt_at <= bindparam("now"),
    )
    .order_by(NOTIFICATIONS.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
)
_UPDATE_ROW = update(NOTIFICATIONS).where(NOTIFICATIONS.c.id == bindparam("row_id"))  # SET: the keys given at execution
_UPDATE_CLAIMED = _UPDATE_ROW.where(
    NOTIFICATIONS.c.attempts == bindparam("claimed"), NOTIFICATIONS.c.status == "pending"
)
# How long a claimed row on SQLite stays invisible to other dispatchers; far above any channel's timeout.
LEASE = timedelta(minutes=10)

# The next due webhook row for the channel's own URL (its recipient has no webhook of their own): batched.
NEXT_SHARED_WEBHOOK = NEXT_DUE.where(NOTIFICATIONS.c.channel == "webhook").where(
    ~exists().where(USERS.c.name == NOTIFICATIONS.c.recipient, USERS.c.webhook.is_not(None), USERS.c.webhook != "")
)


Fence = Callable[[Connection], None]  # a scheduler leader's check, run in the transaction before each commit


def _commit(conn: Connection, fence: Fence | None) -> None:
    """Commit, after `fence` allowed it in the same transaction (rolled back when it refuses): a deposed
    leader's dispatcher commits no claim and no outcome."""
    if fence is not None:
        try:
            fence(conn)
        except BaseException:
            conn.rollback()
            raise
    conn.commit()


class LockClaims:
    """PostgreSQL: rows stay locked (`FOR UPDATE SKIP LOCKED`) from claim to committed outcome."""

    def __init__(self, conn: Connection, fence: Fence | None = None) -> None:
        self.conn, self.fence = conn, fence

    def next(
        self, after_id: int, now: datetime, statement: Select[Any] = NEXT_DUE, keep: bool = False
    ) -> Row[Any] | None:
        """The next due row after `after_id`, locked; `keep`: rows claimed before stay locked if there is none."""
        row = self.conn.execute(statement, {"after": after_id, "now": now}).first()
        if row is None and not keep:
            self.conn.rollback()
        return row

    def record(self, row: Row[Any], values: dict[str, Any], commit: bool = True) -> None:
        self.conn.execute(_UPDATE_ROW, {"row_id": row.id, **values})
        if commit:
            _commit(self.conn, self.fence)

    def record_many(self, outcomes: Sequence[tuple[Row[Any], dict[str, Any]]]) -> None:
        for row, values in outcomes:
            self.conn.execute(_UPDATE_ROW, {"row_id": row.id, **values})
        _commit(self.conn, self.fence)

    def release(self, rows: Sequence[Row[Any]]) -> None:
        self.conn.rollback()


class LeaseClaims:
    """SQLite: claim under the write lock by counting the attempt and pushing `next_attempt_at` out by LEASE.

    The write lock is held only to claim and to record, never while a channel talks to the network: SQLite
    has one writer at a time, and every other command would wait for a slow SMTP server. A dispatcher
    killed mid-send leaves the row pending; it is due again when the lease runs out.
    """

    def __init__(self, conn: Connection, fence: Fence | None = None) -> None:
        self.conn, self.fence = conn, fence

    def next(
        self, after_id: int, now: datetime, statement: Select[Any] = NEXT_DUE, keep: bool = False
    ) -> Row[Any] | None:
        """The next due row after `after_id`, claimed with a lease (`keep` changes nothing here)."""
        self._begin()
        row = self.conn.execute(statement, {"after": after_id, "now": now}).first()
        if row is not None:
            claim = {"row_id": row.id, "attempts": row.attempts + 1, "next_attempt_at": now + LEASE}
            self.conn.execute(_UPDATE_ROW, claim)
            _commit(self.conn, self.fence)
        else:
            self.conn.commit()
        return row

    def record(self, row: Row[Any], values: dict[str, Any], commit: bool = True) -> None:
        self.record_many([(row, values)])

    def record_many(self, outcomes: Sequence[tuple[Row[Any], dict[str, Any]]]) -> None:
        self._begin()
        for row, values in outcomes:
            self.conn.execute(_UPDATE_CLAIMED, {"row_id": row.id, "claimed": row.attempts + 1, **values})
        _commit(self.conn, self.fence)

    def release(self, rows: Sequence[Row[Any]]) -> None:
        try:
            back = [(row, {"attempts": row.attempts, "next_attempt_at": row.next_attempt_at}) for row in rows]
            self.record_many(back)
        except Exception:  # noqa: BLE001 - the lease runs out anyway; keep the original error
            self.conn.rollback()

    def _begin(self) -> None:
        # The write lock up front: with a plain BEGIN two processes could both read the row as pending.
        try:
            self.conn.exec_driver_sql("BEGIN IMMEDIATE")
        except OperationalError as exc:
            self.conn.rollback()
            if "locked" in str(exc.orig):
                raise ConflictError("the database is busy (another dispatcher or command has it): try again") from None
            raise
