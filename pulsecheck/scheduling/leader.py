"""The scheduler's leadership: one scheduler runs jobs, the others wait as standby; the leader writes fenced.

Where leadership lives:
- PostgreSQL: a session advisory lock keyed by the schema (the server releases it the moment the holder's
  connection dies).
- SQLite: a lease in the database's own `scheduler_leader` row, so that every way of opening the file (a symlink,
  a hard link, another relative path) sees it. The leader renews it from a heartbeat thread; a standby takes over
  when the lease has run out, or at once when the leader ran on this machine and its process is gone.

Each takeover increments the row's epoch, the fencing token: every transaction of the leader's process that wrote
something checks, just before it commits and under a lock on that row, that the epoch is still the one it took.
A leader deposed while a job ran (its lock connection cut, its lease taken over) cannot commit that job; the
runner then drops its queued jobs and goes back to standby.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from pulsecheck.errors import RefusedError
from pulsecheck.storage.bulk import WROTE  # session.info: this transaction wrote something (only those are fenced)
from pulsecheck.storage.more_tables import SCHEDULER_LEADER
from pulsecheck.workflow.leases import BOOKKEEPING, Heartbeat, gone, this_process, wall_clock

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from pulsecheck.storage.db import Database

LOCK_KEY = 0x70756C73  # "puls": with the schema, the advisory lock that schedulers of one database compete for
ROW = 1
# SQLite: how long a leader's lease vouches for it, and how often it renews it. A leader on another machine that
# stops renewing loses the lead after LEASE; one on this machine as soon as its process is gone. (A
# `[scheduler] leader_lease` setting should expose it.)
LEASE = timedelta(seconds=30)
HEARTBEAT = 5.0
log = logging.getLogger("pulsecheck.scheduler")


class Deposed(RefusedError):
    """Another scheduler took over: what this one was doing did not commit."""


def mark_written(session: Session) -> None:
    """Say that `session`'s transaction wrote something the ORM did not see (a statement on its connection)."""
    session.info[WROTE] = True


class LeaderLock:
    """Held by the one scheduler that runs jobs; `epoch` is its fencing token while it holds it."""

    def __init__(self, database: Database, wall: Callable[[], datetime] = wall_clock) -> None:
        self.database = database
        self.engine = database.engine
        self.wall = wall
        self.holder = this_process()
        self.epoch: int | None = None
        self.took_over: str | None = None  # why the previous holder counted as gone, if it had not let go
        self._connection: Connection | None = None
        self._heartbeat: Heartbeat | None = None
        self._memory = self.engine.dialect.name == "sqlite" and self.engine.url.database in (None, "", ":memory:")

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def acquire(self) -> bool:
        """Take the lead if nobody holds it; False (at once, without waiting) if another scheduler does."""
        if self.epoch is not None:
            return True
        if self._memory:  # nobody else can open it
            self.epoch = 0
            return True
        epoch = self._take_postgres() if self.postgres else self._take_lease()
        if epoch is None:
            return False
        self.epoch = epoch
        self._fence(install=True)
        if not self.postgres:
            self._heartbeat = Heartbeat(self._renew, HEARTBEAT, "scheduler leader lease").start()
        return True

    def held(self) -> bool:
        """Still the leader (checked before each job)? Reads the epoch: a takeover or a dead connection says no."""
        if self.epoch is None or self._memory:
            return self.epoch is not None
        leader = SCHEDULER_LEADER.c
        query = select(leader.epoch, leader.holder, leader.lease_until).where(leader.id == ROW)
        try:
            if self._connection is not None:
                row = self._connection.execute(query).one()
                self._connection.commit()
            else:
                with self.engine.connect() as connection:
                    row = connection.execute(query).one()
        except Exception:  # noqa: BLE001 - any failure of the lock's connection means the lock is gone
            if self._connection is not None:
                self._connection.invalidate()
                self._connection = None
            return False
        if row.epoch != self.epoch:
            return False
        return self.postgres or (row.lease_until is not None and row.lease_until >= self.wall())

    def release(self) -> None:
        """Give the lead up (a no-op when not held): stop renewing, stop fencing, clear the row if still ours."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if self.epoch is None or self._memory:
            self.epoch = None
            return
        self._fence(install=False)
        clear = (
            update(SCHEDULER_LEADER)
            .where(SCHEDULER_LEADER.c.id == ROW, SCHEDULER_LEADER.c.epoch == self.epoch)
            .values(holder=None, lease_until=None)
        )
        self.epoch = None
        try:
            if self._connection is not None:
                self._connection.execute(clear)
                self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key, hashtext(current_schema()))"), {"key": LOCK_KEY}
                )
                self._connection.commit()
            else:
                with self.engine.begin() as connection:
                    connection.execute(clear)
        except Exception:  # noqa: BLE001 - a lock whose connection died is already released
            log.info("releasing the leader lock: its connection was gone")
        finally:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # --- taking it ---------------------------------------------------------------------------------------

    def _take_postgres(self) -> int | None:
        connection = self.engine.connect()
        try:
            held = connection.execute(
                text("SELECT pg_try_advisory_lock(:key, hashtext(current_schema()))"), {"key": LOCK_KEY}
            ).scalar()
            connection.commit()
            if not held:
                connection.close()
                return None
            epoch = self._bump(connection, None)
            connection.commit()
        except Exception:
            connection.close()
            raise
        self._connection = connection
        return epoch

    def _take_lease(self) -> int | None:
        with self.engine.connect() as connection:
            try:  # the write lock up front: two standbys must not both see the lease free
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            except OperationalError as exc:
                connection.rollback()
                if "locked" in str(exc.orig):
                    return None  # busy: try again at the next poll
                raise
            row = connection.execute(
                select(SCHEDULER_LEADER.c.epoch, SCHEDULER_LEADER.c.holder, SCHEDULER_LEADER.c.lease_until)
                .where(SCHEDULER_LEADER.c.id == ROW)
            ).one()
            if row.holder is not None:
                why = gone(row.holder, row.lease_until, self.wall())
                if why is None:
                    connection.rollback()
                    return None
                self.took_over = why
            epoch = self._bump(connection, self.wall() + LEASE)
            connection.commit()
            return epoch

    def _bump(self, connection: Connection, lease_until: datetime | None) -> int:
        """Take the row: the next epoch, this process as holder."""
        connection.execute(
            update(SCHEDULER_LEADER)
            .where(SCHEDULER_LEADER.c.id == ROW)
            .values(
                epoch=SCHEDULER_LEADER.c.epoch + 1, holder=self.holder.text, lease_until=lease_until,
                acquired_at=self.wall(),
            )
        )
        epoch = select(SCHEDULER_LEADER.c.epoch).where(SCHEDULER_LEADER.c.id == ROW)
        return int(connection.execute(epoch).scalar_one())

    def _renew(self) -> None:
        """The heartbeat (SQLite): push the lease out, if the row is still ours."""
        epoch = self.epoch
        if epoch is None:
            return
        with self.engine.begin() as connection:
            connection.execute(
                update(SCHEDULER_LEADER)
                .where(SCHEDULER_LEADER.c.id == ROW, SCHEDULER_LEADER.c.epoch == epoch)
                .values(lease_until=self.wall() + LEASE)
            )

    # --- the fence ---------------------------------------------------------------------------------------

    def _fence(self, install: bool) -> None:
        listeners: list[tuple[str, Callable[..., Any]]] = [
            ("after_flush", _wrote_by_flush),
            ("do_orm_execute", _wrote_by_statement),
            ("before_commit", self._check),
            ("after_commit", _forget),
            ("after_rollback", _forget),
        ]
        for name, listener in listeners:
            (event.listen if install else event.remove)(self.database.sessions, name, listener)

    def _check(self, session: Session) -> None:
        """Before a transaction that wrote commits: the epoch, locked until the commit, must still be ours."""
        session.flush()  # what is still pending is written now, so that it counts (the commit would flush later)
        if not session.info.pop(WROTE, False) or self.epoch is None or session.info.get(BOOKKEEPING):
            return
        self.check(session.connection())

    def check(self, connection: Connection) -> None:
        """Deposed unless the epoch, locked on `connection` until its transaction ends, is still ours: what a
        job that commits on a connection of its own (the outbox dispatcher) calls before each commit."""
        if self.epoch is None or self._memory:
            return
        query = select(SCHEDULER_LEADER.c.epoch).where(SCHEDULER_LEADER.c.id == ROW).with_for_update()
        current = connection.execute(query).scalar_one()
        if current != self.epoch:
            raise Deposed(
                f"another scheduler took over (epoch {current}, this one led epoch {self.epoch}): "
                "this job's work was not committed"
            )


def _wrote_by_flush(session: Session, _context: Any) -> None:
    session.info[WROTE] = True


def _wrote_by_statement(state: Any) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[WROTE] = True


def _forget(session: Session) -> None:
    session.info.pop(WROTE, None)
    session.info.pop(BOOKKEEPING, None)
