"""Shards of a sharded evaluation run: planned with the run, claimed by any worker process sharing the database,
held while it works, marked done (or given back with the error).

A shard is the accounts whose block of ids (`id // block`) is `shard` modulo `shards`: a hash of the account id
that keeps each block a range of ids, so that a worker reads its accounts with index range scans, one block at a
time (its memory does not grow with the portfolio). On PostgreSQL a claim picks rows `FOR UPDATE SKIP LOCKED`
(claimers never wait on each other) and holds a session advisory lock on the shard while it works: a shard marked
`running` whose lock is free lost its session (the worker died, on any host) and is claimed again at once. SQLite
is one file on one host: a claim is a conditional UPDATE, and a `running` shard is claimed again when its holder's
pid is gone or its lease ran out (`leases.gone`). A shard tried MAX_ATTEMPTS times without finishing fails its run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.engine import Engine

from pulsecheck.storage.facts import IdRange
from pulsecheck.storage.more_tables import EVALUATION_SHARDS
from pulsecheck.storage.tables import EVALUATION_RUNS
from pulsecheck.workflow.leases import Heartbeat, Holder, gone, wall_clock

BLOCK = 2000  # accounts a worker holds the facts of at a time
SHARDS_PER_WORKER = 4  # more shards than workers: a slow or crashed worker's share is small
MAX_ATTEMPTS = 3
SHARD_LEASE = timedelta(seconds=60)
SHARD_HEARTBEAT = 15.0
LOCK_CLASS = 7_270_011  # PostgreSQL advisory locks (class, shard row id) of the shards being worked on
CANDIDATES = 16  # rows one claim looks at



def plan(connection: Connection, run_id: int, last_account: int, workers: int, block: int = BLOCK) -> int:
    """Insert the shard rows of a run over accounts up to `last_account`; returns how many."""
    blocks = last_account // block + 1
    count = max(1, min(blocks, workers * SHARDS_PER_WORKER))
    rows = [
        {"run_id": run_id, "shard": k, "shards": count, "block": block, "last_account": last_account,
         "status": "pending", "attempts": 0, "accounts": 0, "firings": 0, "actions": 0}
        for k in range(count)
    ]  # fmt: skip
    connection.execute(insert(EVALUATION_SHARDS), rows)
    return count


@dataclass
class Claim:
    """A shard this process holds: its row and, on PostgreSQL, the connection holding its advisory lock."""

    id: int
    run_id: int
    shard: int
    shards: int
    block: int
    last_account: int
    attempts: int  # including this one
    holder: Holder
    connection: Connection | None = None
    heartbeat: Heartbeat | None = None

    def blocks(self) -> Iterator[IdRange]:
        """The id ranges of this shard's accounts, ascending."""
        for number in range(self.shard, self.last_account // self.block + 1, self.shards):
            yield IdRange(number * self.block, min((number + 1) * self.block - 1, self.last_account))


def claim(engine: Engine, holder: Holder, run_id: int | None = None) -> Claim | None:
    """Claim a shard of a running run (of `run_id` only, if given) that nobody works on, or None."""
    table, runs = EVALUATION_SHARDS, EVALUATION_RUNS
    postgres = engine.dialect.name == "postgresql"
    query = (
        select(table)
        .join(runs, runs.c.id == table.c.run_id)
        .where(runs.c.status == "running", table.c.status != "done", table.c.attempts < MAX_ATTEMPTS)
        .order_by(table.c.run_id, table.c.shard)
    )
    if run_id is not None:
        query = query.where(table.c.run_id == run_id)
    connection = engine.connect()
    try:
        with connection.begin():
            found = _first_taken(connection, query, holder, postgres)
    except BaseException:
        connection.invalidate()  # a session lock may be held: the connection must not go back to the pool
        raise
    if found is None or not postgres:
        connection.close()
    if found is not None:
        found.heartbeat = Heartbeat(lambda: _renew(engine, found), SHARD_HEARTBEAT, f"shard {found.id}").start()
    return found


def _first_taken(connection: Connection, query: Any, holder: Holder, postgres: bool) -> Claim | None:
    """The first candidate row this claim could take. On PostgreSQL the rows are locked one at a time (`LIMIT 1
    FOR UPDATE SKIP LOCKED`, then the next one past those tried): a claim that locked every candidate at once
    made a concurrent claim find them all locked, and its worker end with shards still pending."""
    tried: list[int] = []
    for _ in range(CANDIDATES):
        if postgres:
            picked = query.where(EVALUATION_SHARDS.c.id.not_in(tried)) if tried else query
            rows = connection.execute(picked.limit(1).with_for_update(of=EVALUATION_SHARDS, skip_locked=True)).all()
        else:
            rows = connection.execute(query).all()
        for row in rows:
            if _take(connection, row, holder, postgres):
                return Claim(
                    row.id, row.run_id, row.shard, row.shards, row.block, row.last_account, row.attempts + 1,
                    holder, connection if postgres else None,
                )  # fmt: skip
            tried.append(row.id)
        if not postgres or not rows:
            return None
    return None


def _take(connection: Connection, row: Any, holder: Holder, postgres: bool) -> bool:
    """Take one candidate row if nobody works on it: conditional on it being unchanged since it was read."""
    if postgres:
        if not connection.scalar(select(func.pg_try_advisory_lock(LOCK_CLASS, row.id))):
            return False  # a live session holds it
    elif row.status == "running" and gone(row.holder, row.lease_until, wall_clock()) is None:
        return False
    table = EVALUATION_SHARDS
    took = connection.execute(
        update(table)
        .where(table.c.id == row.id, table.c.status == row.status, table.c.attempts == row.attempts)
        .values(status="running", holder=holder.text, lease_until=wall_clock() + SHARD_LEASE,
                attempts=row.attempts + 1)
    ).rowcount  # fmt: skip
    if not took and postgres:
        connection.execute(select(func.pg_advisory_unlock(LOCK_CLASS, row.id)))
    return bool(took)


def _renew(engine: Engine, held: Claim) -> None:
    table = EVALUATION_SHARDS
    with engine.begin() as connection:
        connection.execute(
            update(table)
            .where(table.c.id == held.id, table.c.holder == held.holder.text, table.c.status == "running")
            .values(lease_until=wall_clock() + SHARD_LEASE)
        )


def finish(engine: Engine, held: Claim, counts: dict[str, int]) -> bool:
    """Mark the shard done with its counts (accounts, firings, actions); False if it was taken from this process."""
    table = EVALUATION_SHARDS
    _stop(held)
    try:
        with engine.begin() as connection:
            done = connection.execute(
                update(table)
                .where(table.c.id == held.id, table.c.holder == held.holder.text, table.c.status == "running")
                .values(status="done", finished_at=wall_clock(), lease_until=None, **counts)
            ).rowcount
    finally:
        release(held)
    return bool(done)


def give_back(engine: Engine, held: Claim, error: str) -> None:
    """Return the shard unfinished with why (its attempt counts): another claim may take it at once."""
    table = EVALUATION_SHARDS
    _stop(held)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(table)
                .where(table.c.id == held.id, table.c.holder == held.holder.text, table.c.status == "running")
                .values(status="pending", lease_until=None, error=error[:2000])
            )
    finally:
        release(held)


def _stop(held: Claim) -> None:
    if held.heartbeat is not None:
        held.heartbeat.stop()
        held.heartbeat = None


def release(held: Claim) -> None:
    """Drop the shard's session lock and its connection (PostgreSQL)."""
    if held.connection is None:
        return
    try:
        held.connection.execute(select(func.pg_advisory_unlock_all()))
        held.connection.commit()
        held.connection.close()
    except Exception:  # noqa: BLE001 - a broken connection: dropping it releases its lock too
        held.connection.invalidate()
    held.connection = None


@dataclass(frozen=True)
class Progress:
    """Where a run's shards are: how many, done, free to claim, stuck, and the counts of the done ones."""

    shards: int
    done: int
    free: int  # pending, or running for a holder that is gone: a new worker would have something to do
    stuck: list[str]  # tried MAX_ATTEMPTS times, not done and not held: the run cannot finish
    accounts: int
    firings: int
    actions: int


def progress(connection: Connection, run_id: int) -> Progress:
    """The shards of a run, counted (a run has a few dozen)."""
    table = EVALUATION_SHARDS
    rows = connection.execute(select(table).where(table.c.run_id == run_id)).all()
    now = wall_clock()
    done = [row for row in rows if row.status == "done"]
    idle = [row for row in rows if row.status == "pending" or gone(row.holder, row.lease_until, now)]
    idle = [row for row in idle if row.status != "done"]
    return Progress(
        shards=len(rows),
        done=len(done),
        free=sum(1 for row in idle if row.attempts < MAX_ATTEMPTS),
        stuck=[f"shard {row.shard}: {row.error or 'its worker died'}" for row in idle if row.attempts >= MAX_ATTEMPTS],
        accounts=sum(row.accounts for row in done),
        firings=sum(row.firings for row in done),
        actions=sum(row.actions for row in done),
    )
