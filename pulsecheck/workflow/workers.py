"""Sharded evaluation: `evaluate --workers N` plans a run's shards and waits while worker processes (its own N,
and `pulsecheck worker` on any host sharing the database) claim them, compute facts and firings for one block of
accounts at a time, apply the actions (the same apply stage as `evaluate`, idempotent: a shard done twice opens
nothing twice) and mark them done. The run is done when every shard is.

Workers take the run's clock (`started_at`, `as_of`) and ruleset from its row, never their own.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import delete, func, select

from pulsecheck.errors import PulsecheckError
from pulsecheck.rules.language import RulesFile, load_rules, windows_used
from pulsecheck.storage.bulk import analyze, analyze_threshold
from pulsecheck.storage.facts import compute_facts
from pulsecheck.storage.models import Account, EvaluationRun, RuleFiring, Ruleset
from pulsecheck.workflow import shards
from pulsecheck.workflow.actions import ANALYZE_AFTER, GROWN, Batches
from pulsecheck.workflow.evaluation import (
    RUN_LEASE,
    EvaluationSettings,
    Progress,
    _lease,
    low_threshold,
    recover_runs,
)
from pulsecheck.workflow.leases import BOOKKEEPING, this_process, wall_clock
from pulsecheck.workflow.rulesets import active_rules

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from pulsecheck.storage.db import Database

logger = logging.getLogger("pulsecheck.workers")
ANALYZE_LOCK = 7_270_012  # PostgreSQL advisory lock: one worker at a time analyzes the tables runs grow
POLL = 0.2  # seconds between looks at the shard table while waiting
EXIT_WAIT = 10.0  # seconds the workers of a finished run get to exit by themselves


class RunFailed(PulsecheckError):
    """A sharded run could not finish: a shard failed every attempt; what was applied stays (it is idempotent)."""


class Worker(Protocol):
    """A local worker process started by `evaluate --workers`."""

    def poll(self) -> int | None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


@dataclass
class RunContext:
    """What every shard of one run shares: its clock, its rules and the facts they read."""

    run_id: int
    now: datetime
    as_of: datetime
    rules: RulesFile
    low: float | None


def _context(database: Database, run_id: int) -> RunContext:
    with database.transaction() as session:
        run = session.get(EvaluationRun, run_id)
        assert run is not None and run.ruleset_id is not None
        ruleset = session.get(Ruleset, run.ruleset_id)
        assert ruleset is not None
        return RunContext(run_id, run.started_at, run.as_of, _parsed(ruleset.content, ruleset.name),
                          low_threshold(session))  # fmt: skip


@functools.lru_cache(maxsize=4)
def _parsed(content: str, name: str) -> RulesFile:
    """The rules of a ruleset's text, parsed and validated once per process (a worker takes several shards of a
    run, and parsing the YAML again for each cost a tenth of a second)."""
    return load_rules(content, name)


class Engine:
    """The durable-rules core of this process, with the rulesets of one rules file at a time, and the rows its
    apply stage added since PostgreSQL's statistics were last refreshed."""

    def __init__(self) -> None:
        self.sha: str | None = None
        # The tables the apply stage grows are analyzed every `analyze_after` rows this process adds (doubling),
        # counted across blocks and shards; the first threshold is set from their size (`refresh_statistics`).
        self.grown, self.analyze_after, self.sized = 0, ANALYZE_AFTER, False

    def refresh_statistics(self, database: Database) -> None:
        """ANALYZE the tables the apply stage grows once this process added `analyze_after` rows to them, between
        blocks (PostgreSQL; a no-op elsewhere). The first threshold is a tenth of the rows they held when this
        process first looked (autovacuum's own analyze scale factor), at least ANALYZE_AFTER: a first run on
        empty tables analyzes at 5,000, 10,000, 20,000... rows, a nightly run adding a few percent to big tables
        does not. Each ANALYZE commits at once, and one process at a time runs it: inside a batch's transaction
        it kept its lock until that commit, and another worker's ANALYZE of the same tables waited that long;
        a worker that finds another analyzing skips its turn (the statistics refreshed serve both)."""
        if database.engine.dialect.name != "postgresql":
            return
        if not self.sized:
            with database.engine.connect() as connection:
                self.analyze_after, self.sized = analyze_threshold(connection, GROWN, ANALYZE_AFTER), True
        if self.grown < self.analyze_after:
            return
        with database.transaction() as session:
            if session.scalar(select(func.pg_try_advisory_xact_lock(ANALYZE_LOCK))):
                analyze(session, GROWN)
        self.grown, self.analyze_after = 0, self.analyze_after * 2

    def firings(self, rules: RulesFile, facts: dict[int, dict[str, Any]]) -> list[tuple[int, str]]:
        """Firings of the rules over these accounts, computed in this process (a crash ends only this worker)."""
        from pulsecheck.rules import durable

        if self.sha != rules.sha256:
            durable.init_worker(durable.compile_rules(rules), None, durable.FactEncoder.of(rules).names)
            self.sha = rules.sha256
        return durable.evaluate_chunk(sorted(facts.items()))


class Stages:
    """Wall and CPU seconds of this process per stage (facts, engine, apply): under load the two part, and the
    gap is time spent waiting (for the database, or for a core)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {"facts": 0.0, "engine": 0.0, "apply": 0.0}
        self.cpu: dict[str, float] = dict.fromkeys(self.wall, 0.0)

    @contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[stage] += time.perf_counter() - wall
            self.cpu[stage] += time.process_time() - cpu

    def __str__(self) -> str:
        return ", ".join(f"{stage} {self.wall[stage]:.1f} s (CPU {self.cpu[stage]:.1f} s)" for stage in self.wall)


def process(
    database: Database, config: EvaluationSettings, held: shards.Claim, engine: Engine, stages: Stages
) -> dict[str, int]:
    """Facts, firings and actions of a claimed shard, one block of accounts at a time; its counts (the time of
    each stage is added to `stages`)."""
    run = _context(database, held.run_id)
    windows = windows_used(run.rules.rules)
    counts = {"accounts": 0, "firings": 0, "actions": 0}
    for block in held.blocks():
        with stages.timing("facts"), database.transaction() as session:
            facts = compute_facts(session, run.as_of, windows, run.low, block)
            if held.attempts > 1:  # an earlier attempt may have recorded some of these firings: they are redone
                session.execute(
                    delete(RuleFiring).where(
                        RuleFiring.run_id == run.run_id, RuleFiring.account_id.between(block.first, block.last)
                    )
                )
        if not facts:
            continue
        with stages.timing("engine"):
            firings = engine.firings(run.rules, facts)
        with stages.timing("apply"):
            engine.refresh_statistics(database)
            batches = Batches(
                database.transaction, config, run.rules, facts, firings, run.now, run.run_id, sorted(facts)
            )
            batches.analyze_after = sys.maxsize  # the engine analyzes between blocks instead
            log = batches.run(config.batch_size)
            engine.grown += batches.grown
        counts["accounts"] += len(facts)
        counts["firings"] += len(firings)
        counts["actions"] += len(log.planned)
    return counts


def work(
    database: Database,
    config: EvaluationSettings,
    run_id: int | None = None,
    once: bool = False,
    said: Callable[[str], None] = logger.info,
) -> int:
    """Claim and process shards until none is left to claim (`once`, or a given run), else forever, waiting for
    runs. A shard that fails is given back with its error (another attempt may succeed). Returns shards done."""
    engine, done = Engine(), 0
    while True:
        held = shards.claim(database.engine, this_process(), run_id)
        if held is None:
            if once or run_id is not None:
                return done
            time.sleep(1.0)
            continue
        stages = Stages()
        try:
            counts = process(database, config, held, engine, stages)
        except Exception as exc:
            shards.give_back(database.engine, held, f"{type(exc).__name__}: {exc}")
            said(f"run {held.run_id} shard {held.shard}: failed ({exc}); given back")
            continue
        if shards.finish(database.engine, held, counts):
            done += 1
            said(f"run {held.run_id} shard {held.shard}/{held.shards}: {counts['accounts']} accounts done ({stages})")


@dataclass
class ShardedReport:
    """What a sharded run did, counted."""

    run_id: int
    accounts: int
    firings: int
    actions: int
    shards: int
    workers: int
    seconds: float
    recovered: list[str]


def evaluate_sharded(
    database: Database,
    as_of: datetime,
    now: datetime,
    workers: int,
    spawn: Callable[[int], Worker],
    progress: Progress | None = None,
    on_done: Callable[[Session], None] | None = None,
) -> ShardedReport:
    """Plan a run in shards, start `workers` local workers (`spawn(run_id)`), and wait until every shard is done
    (workers elsewhere may take some); the run then ends `done`, or `failed` when a shard failed every attempt."""
    clock = time.perf_counter()
    holder = this_process()
    with database.transaction() as session:
        recovered = recover_runs(session, now)
        row, _ = active_rules(session)
        accounts, last = session.execute(select(func.count(Account.id), func.max(Account.id))).one()
        run = EvaluationRun(
            started_at=now, as_of=as_of, ruleset_id=row.id, accounts=accounts, firings=0, actions=0,
            status="running", holder=holder.text, lease_until=wall_clock() + RUN_LEASE,
        )  # fmt: skip
        session.add(run)
        session.flush()
        count = shards.plan(session.connection(), run.id, last or 0, workers)
    with _lease(database, run.id, holder):
        found = _wait(database, run.id, workers, spawn, progress)
    _end(database, run.id, now, found, on_done)
    return ShardedReport(run.id, found.accounts, found.firings, found.actions, count, workers,
                         time.perf_counter() - clock, recovered)  # fmt: skip


def _wait(
    database: Database, run_id: int, workers: int, spawn: Callable[[int], Worker], progress: Progress | None
) -> shards.Progress:
    """Keep `workers` local workers while shards are free to claim, until every shard is done (or one is stuck)."""
    local: list[Worker] = []
    found, started, exits = None, 0, []
    try:
        while True:
            with database.engine.connect() as connection:
                found = shards.progress(connection, run_id)
            if progress is not None:
                progress("shards", found.done, found.shards)
            if found.done == found.shards or found.stuck:
                return found
            exits += [code for worker in local if (code := worker.poll()) is not None]
            local = [worker for worker in local if worker.poll() is None]
            wanted = min(workers - len(local), found.free)
            if wanted and started >= workers + found.shards * shards.MAX_ATTEMPTS:  # e.g. they cannot connect
                gave_up = f"local workers keep exiting (exit codes {sorted(set(exits))}) with shards left to do"
                return dataclasses.replace(found, stuck=[gave_up])
            for _ in range(wanted):
                local.append(spawn(run_id))
                started += 1
            time.sleep(POLL)
    finally:
        ends = time.monotonic() + (EXIT_WAIT if found is not None and found.done == found.shards else 0)
        for worker in local:
            try:  # a finished run's workers are exiting: nothing is left to claim
                worker.wait(max(0.0, ends - time.monotonic()))
            except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired, or an interrupt: end it
                worker.kill()
                worker.wait()


def _end(
    database: Database, run_id: int, now: datetime, found: shards.Progress, on_done: Callable[[Session], None] | None
) -> None:
    """The run ends done with the counts of its shards, or failed naming the stuck shards."""
    with database.transaction() as session:
        run = session.get(EvaluationRun, run_id)
        assert run is not None
        run.finished_at, run.firings, run.actions = now, found.firings, found.actions
        if found.stuck:
            session.info[BOOKKEEPING] = True
            run.status, run.error = "failed", "; ".join(found.stuck)[:2000]
        else:
            run.status = "done"
            if on_done is not None:
                on_done(session)
    if found.stuck:
        raise RunFailed(f"run {run_id} failed: {'; '.join(found.stuck)}")


__all__ = ["RunFailed", "ShardedReport", "evaluate_sharded", "work"]
