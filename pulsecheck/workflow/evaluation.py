"""Evaluation runs: facts → firings (durable-rules) → actions, recorded in `evaluation_runs`.

Stages: facts (read in bulk), engine (every firing computed before anything is written, so a crash of the C
core writes nothing), apply (actions in batches of accounts, each batch its own transaction; `workflow.actions`).
The run row is committed as `running` before the first batch and ends `done`, or `failed` with the error. While it
runs, its process renews a lease on the row (`workflow.leases`); a run left `running` by a process that died is
marked `failed`, with the reason, by the next evaluation or scheduler start (`recover_runs`). Re-running is safe:
every action is deduplicated, so a second run finishes what a killed one left half done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from pulsecheck.collector import settled
from pulsecheck.errors import RefusedError
from pulsecheck.notifications.outbox import Routing
from pulsecheck.rules.language import RulesFile, windows_used
from pulsecheck.rules.priority import PriorityMatrix
from pulsecheck.storage.facts import compute_facts
from pulsecheck.storage.models import Account, EvaluationRun
from pulsecheck.storage.tables import EVALUATION_RUNS
from pulsecheck.workflow.actions import ActionLog, Batches, Planned
from pulsecheck.workflow.leases import BOOKKEEPING, Heartbeat, Holder, gone, this_process, wall_clock
from pulsecheck.workflow.models import approved_model
from pulsecheck.workflow.rulesets import active_rules

if TYPE_CHECKING:
    from pulsecheck.config import Settings
    from pulsecheck.storage.db import Database

Progress = Callable[[str, int, int], None]  # (stage, done, total): stages "facts", "engine", "apply"
# How long a run's heartbeat vouches for it, and how often it is renewed. A run on another machine that stops
# renewing is found gone after RUN_LEASE; on this machine as soon as its pid is gone. (A `[rules] run_lease`
# setting should expose it.)
RUN_LEASE = timedelta(seconds=60)
logger = logging.getLogger("pulsecheck.evaluation")
RUN_HEARTBEAT = 15.0


@dataclass(frozen=True)
class EvaluationSettings:
    """What evaluation needs from config."""

    priority: PriorityMatrix = field(default_factory=PriorityMatrix)
    routing: Routing = field(default_factory=Routing)
    matrix: dict[str, list[str]] = field(default_factory=dict)  # severity → roles notified by `escalate`
    workers: int = 2
    batch_size: int = 500
    p1_share: float = 0.10
    fallback_owner: str | None = None
    segment_owners: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> EvaluationSettings:
        """Built from validated `[priority]`, `[notifications]` (channel, roles, matrix) and `[rules]`."""
        return cls(
            priority=settings.priority_matrix(),
            routing=Routing.from_settings(settings),
            matrix={severity: list(roles) for severity, roles in settings.notifications.matrix.items()},
            workers=settings.rules.workers,
            batch_size=settings.rules.batch_size,
            p1_share=settings.priority.p1_share,
            fallback_owner=settings.escalation.fallback_owner,
            segment_owners={name: s.owner for name, s in settings.segments.items() if s.owner},
        )


def low_threshold(session: Session) -> float | None:
    """The lowest bucket's threshold of the approved model (what a 'low' score is)."""
    try:
        _, model = approved_model(session)
    except RefusedError:
        return None
    return model.buckets[0].below


def account_facts(
    session: Session, rules: RulesFile, as_of: datetime, account_ids: list[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Facts for the accounts, with the windows these rules use."""
    return compute_facts(session, as_of, windows_used(rules.rules), low_threshold(session), account_ids)


@dataclass
class EvaluationReport:
    """What a run found and did: firings (account, rule), actions, escalations resolved, and stage timings."""

    as_of: datetime
    accounts: int = 0
    firings: list[tuple[str, str]] = field(default_factory=list)
    actions: list[Planned] = field(default_factory=list)
    resolved: list[Planned] = field(default_factory=list)
    run_id: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each stage: facts, engine, apply
    cpu: dict[str, float] = field(default_factory=dict)  # CPU time of this process in each stage (not its workers')
    recovered: list[str] = field(default_factory=list)  # interrupted runs this one found and marked failed


def evaluate(
    database: Database,
    config: EvaluationSettings,
    as_of: datetime,
    now: datetime,
    dry_run: bool = False,
    account_id: int | None = None,
    progress: Progress | None = None,
    on_done: Callable[[Session], None] | None = None,
) -> EvaluationReport:
    """Evaluate the active rules over the portfolio (or one account) and apply their actions in batches.

    Runs left `running` by a process that died are marked failed first. `on_done(session)` is called inside the
    transaction that marks the run done (the scheduler moves its job on there: never before the work committed).
    """
    from pulsecheck.rules import durable

    unit = database.transaction
    report = EvaluationReport(as_of=as_of)
    clock, cpu = time.perf_counter(), time.process_time()
    with unit() as session:
        if not dry_run:
            report.recovered = recover_runs(session, now)
        row, rules = active_rules(session)
        ruleset_id, scope = row.id, [account_id] if account_id is not None else None
        facts = account_facts(session, rules, as_of, scope)
        query = select(Account.id, Account.external_id)
        if scope is not None:
            query = query.where(Account.id.in_(scope))
        names: dict[int, str] = {account: name for account, name in session.execute(query)}
    report.accounts, report.seconds["facts"] = len(facts), time.perf_counter() - clock
    report.cpu["facts"] = time.process_time() - cpu
    if progress is not None:
        progress("facts", 1, 1)
    clock, cpu = time.perf_counter(), time.process_time()
    firings = durable.evaluate(
        rules,
        facts.items(),
        workers=config.workers,
        progress=None if progress is None else _counter(progress, "engine", len(facts)),
    )
    report.firings, report.seconds["engine"] = [(names[a], r) for a, r in firings], time.perf_counter() - clock
    report.cpu["engine"] = time.process_time() - cpu
    clock, cpu = time.perf_counter(), time.process_time()
    on_batch = None if progress is None else partial(progress, "apply")
    with settled():
        if dry_run:
            with _rolled_back(database) as session:
                batches = Batches(session, config, rules, facts, firings, now, None, scope)
                log = batches.run(config.batch_size, on_batch)
        else:
            holder = this_process()
            report.run_id = _start_run(unit, ruleset_id, as_of, now, len(facts), len(firings), holder)
            batches = Batches(unit, config, rules, facts, firings, now, report.run_id, scope)
            with _lease(database, report.run_id, holder):
                log = _run_recorded(unit, batches, config.batch_size, on_batch, on_done)
    report.actions, report.resolved = log.planned, log.resolved
    report.seconds["apply"], report.cpu["apply"] = time.perf_counter() - clock, time.process_time() - cpu
    return report


def _start_run(
    unit: Callable[[], Any],
    ruleset_id: int,
    as_of: datetime,
    now: datetime,
    accounts: int,
    firings: int,
    holder: Holder,
) -> int:
    """Commit the run row as `running`, held by `holder` (so a run that dies mid-way is seen), and return its id."""
    with unit() as session:
        run = EvaluationRun(
            started_at=now, as_of=as_of, ruleset_id=ruleset_id, accounts=accounts, firings=firings, actions=0,
            status="running", holder=holder.text, lease_until=wall_clock() + RUN_LEASE,
        )  # fmt: skip
        session.add(run)
        session.flush()
        return run.id


@contextmanager
def _lease(database: Database, run_id: int, holder: Holder) -> Iterator[None]:
    """Renew the run's lease while the block runs (outside its transactions: a Core update of two columns that
    no hook watches)."""
    table = EVALUATION_RUNS
    renew = (
        update(table)
        .where(table.c.id == run_id, table.c.holder == holder.text, table.c.status == "running")
        .values(lease_until=bindparam("until"))
    )

    def beat() -> None:
        with database.engine.begin() as connection:
            connection.execute(renew, {"until": wall_clock() + RUN_LEASE})

    heartbeat = Heartbeat(beat, RUN_HEARTBEAT, f"run {run_id} lease").start()
    try:
        yield
    finally:
        heartbeat.stop()


def _run_recorded(
    unit: Callable[[], Any],
    batches: Batches,
    size: int,
    on_batch: Callable[[int, int], None] | None,
    on_done: Callable[[Session], None] | None,
) -> ActionLog:
    """Apply the batches of a recorded run; its row ends `done` with the count of actions, or `failed` with why."""
    try:
        log = batches.run(size, on_batch)
    except Exception as exc:
        try:
            with unit() as session:
                session.info[BOOKKEEPING] = True  # a deposed scheduler still says its run failed
                failed = session.get(EvaluationRun, batches.run_id)
                assert failed is not None
                failed.status, failed.finished_at = "failed", batches.now
                failed.error = f"{type(exc).__name__}: {exc}"[:2000]
        except Exception:  # noqa: BLE001 - e.g. the database is gone: the run's lease runs out instead
            logger.warning("run %s: could not record its failure", batches.run_id, exc_info=True)
        raise
    with unit() as session:
        done = session.get(EvaluationRun, batches.run_id)
        assert done is not None
        done.status, done.finished_at, done.actions = "done", batches.now, len(log.planned)
        if on_done is not None:
            on_done(session)
    return log


def recover_runs(session: Session, now: datetime, wall: datetime | None = None) -> list[str]:
    """Mark failed every `running` run whose process is gone (`leases.gone`), with the reason, at `now`.
    Returns one line per run so marked."""
    wall = wall or wall_clock()
    found = []
    running = select(EvaluationRun).where(EvaluationRun.status == "running").order_by(EvaluationRun.id)
    for run in session.scalars(running):
        why = gone(run.holder, run.lease_until, wall)
        if why is None:
            continue
        run.status, run.finished_at, run.error = "failed", now, f"interrupted: {why}"
        found.append(f"run {run.id} (started {run.started_at.isoformat(timespec='seconds')}) was interrupted: {why}")
    return found


@contextmanager
def _rolled_back(database: Database) -> Iterator[Session]:
    """A session whose changes are never kept (dry run)."""
    session = database.session()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def _counter(progress: Progress, stage: str, total: int) -> Callable[[int], None]:
    """`progress(stage, done, total)` as a callback told how many more are done."""
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        progress(stage, done, total)

    return advance
