"""Scoring services: scoring the portfolio into snapshots with the approved model, and trends for people."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from pulsecheck import collector
from pulsecheck.scoring.compute import NO_INPUTS, ScoreResult, score_account
from pulsecheck.storage.models import ScoreSnapshot
from pulsecheck.workflow import deviations as deviation
from pulsecheck.workflow import score_inputs
from pulsecheck.workflow.models import approved_model
from pulsecheck.workflow.snapshot_rows import SnapshotWriter

INPUT_KINDS = ("stale", "missing", "duplicate")
CHUNK = 5000  # accounts read, scored and written together: memory is bounded by this, not by the portfolio


@dataclass
class ScoreRun:
    """What `score` did: counts, buckets and deviation changes."""

    as_of: datetime
    model_version: str
    accounts: int = 0
    scored: int = 0
    provisional: int = 0
    buckets: dict[str, int] = field(default_factory=dict)
    deviations: dict[str, int] = field(default_factory=dict)


def score_portfolio(session: Session, as_of: datetime, now: datetime, account_id: int | None = None) -> ScoreRun:
    """One snapshot per account at `as_of` with the approved model; input findings become deviations.

    Scoring the same as_of again replaces those snapshots instead of adding more. Accounts are read, scored and
    written CHUNK at a time, so memory does not grow with the portfolio.
    """
    row, model = approved_model(session)
    run = ScoreRun(as_of=as_of, model_version=model.version)
    newest = session.scalar(select(func.max(ScoreSnapshot.as_of)))
    delete_query = delete(ScoreSnapshot).where(ScoreSnapshot.as_of == as_of)
    if account_id is not None:
        delete_query = delete_query.where(ScoreSnapshot.account_id == account_id)
    session.execute(delete_query)
    writer = SnapshotWriter(session, model, row.id, as_of)
    kpis = score_inputs.reading_kpis(model)
    found: dict[deviation.Key, str] = {}
    moments = score_inputs.Moments()
    try:
        for ids in score_inputs.account_chunks(session, CHUNK, account_id):
            first, last = ids[0], ids[-1]
            with collector.paused():  # a chunk makes no reference cycles
                readings = score_inputs.latest_readings(session, as_of, kpis, first, last, moments)
                responses = score_inputs.surveys(session, model, as_of, first, last, moments)
                derived = score_inputs.formula_inputs(session, model, as_of, first, last)
                rows = []
                for acc in ids:
                    result = score_account(model, readings.get(acc, ()), responses.get(acc, ()), as_of,
                                           derived.get(acc, NO_INPUTS))  # fmt: skip
                    rows.append(writer.row(acc, result))
                    _count(run, acc, result, found)
            writer.write(rows)
    finally:
        writer.close()  # the latest_snapshots insert trigger back, if the writer took it away
    scope = {account_id} if account_id is not None else None
    if newest is None or as_of >= newest:  # a backfill of the past must not rewrite today's findings
        run.deviations = deviation.sync(session, found, INPUT_KINDS, now, scope=scope)
    return run


def _count(run: ScoreRun, account_id: int, result: ScoreResult, found: dict[deviation.Key, str]) -> None:
    for finding in result.findings:
        found[(account_id, finding.kind, finding.kpi)] = finding.detail
    run.accounts += 1
    run.scored += result.score is not None
    run.provisional += result.provisional
    if result.bucket:
        run.buckets[result.bucket] = run.buckets.get(result.bucket, 0) + 1


def latest_buckets(session: Session) -> dict[int, tuple[float | None, str | None]]:
    """Account id → (score, bucket) of its latest snapshot."""
    newest = (
        select(ScoreSnapshot.account_id, func.max(ScoreSnapshot.as_of).label("as_of"))
        .group_by(ScoreSnapshot.account_id)
        .subquery()
    )
    query = select(ScoreSnapshot.account_id, ScoreSnapshot.score, ScoreSnapshot.bucket).join(
        newest, (newest.c.account_id == ScoreSnapshot.account_id) & (newest.c.as_of == ScoreSnapshot.as_of)
    )
    return {acc: (score, bucket) for acc, score, bucket in session.execute(query)}
