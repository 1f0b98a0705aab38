"""Scoring services: scoring the portfolio into snapshots with the approved model, and trends for people."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from pulsecheck.scoring import trends
from pulsecheck.scoring.compute import (
    Component,
    Reading,
    ScoreResult,
    SurveyResponse,
    contribution_changes,
    score_account,
)
from pulsecheck.scoring.model import ScoringModel
from pulsecheck.storage.models import Account, KpiReading, ScoreSnapshot
from pulsecheck.storage.models import SurveyResponse as SurveyRow
from pulsecheck.workflow import deviations as deviation
from pulsecheck.workflow.models import approved_model

INPUT_KINDS = ("stale", "missing", "duplicate")


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


def _latest_readings(session: Session, as_of: datetime, kpis: list[str]) -> dict[int, list[Reading]]:
    """The newest readings per (account, kpi) at `as_of`, ties included (they reveal duplicates)."""
    ranked = (
        select(
            KpiReading.account_id,
            KpiReading.kpi,
            KpiReading.value,
            KpiReading.observed_at,
            KpiReading.source,
            func.rank()
            .over(partition_by=(KpiReading.account_id, KpiReading.kpi), order_by=KpiReading.observed_at.desc())
            .label("rk"),
        )
        .where(KpiReading.observed_at <= as_of, KpiReading.kpi.in_(kpis))
        .subquery()
    )
    query = select(ranked.c.account_id, ranked.c.kpi, ranked.c.value, ranked.c.observed_at, ranked.c.source).where(
        ranked.c.rk == 1
    )
    result: dict[int, list[Reading]] = defaultdict(list)
    observed_type = KpiReading.__table__.c.observed_at.type
    for account_id, kpi, value, observed_at, source in session.execute(query):
        if not isinstance(observed_at, datetime):  # a subquery column may come back untyped on SQLite
            observed_at = observed_type.process_result_value(  # type: ignore[attr-defined]
                datetime.fromisoformat(str(observed_at)), None
            )
        elif observed_at.tzinfo is None:
            observed_at = observed_type.process_result_value(observed_at, None)  # type: ignore[attr-defined]
        result[account_id].append(Reading(kpi, value, observed_at, source or ""))
    return result


def _surveys(session: Session, model: ScoringModel, as_of: datetime) -> dict[int, list[SurveyResponse]]:
    windows = [k.window or timedelta(days=90) for k in model.kpis if k.from_surveys]
    result: dict[int, list[SurveyResponse]] = defaultdict(list)
    if not windows:
        return result
    query = select(
        SurveyRow.account_id, SurveyRow.kind, SurveyRow.score, SurveyRow.max_score, SurveyRow.responded_at
    ).where(SurveyRow.responded_at <= as_of, SurveyRow.responded_at >= as_of - max(windows))
    for account_id, kind, score, max_score, responded_at in session.execute(query):
        result[account_id].append(SurveyResponse(kind, score, max_score, responded_at))
    return result


def score_portfolio(session: Session, as_of: datetime, now: datetime, account_id: int | None = None) -> ScoreRun:
    """One snapshot per account at `as_of` with the approved model; input findings become deviations.

    Scoring the same as_of again replaces those snapshots instead of adding more.
    """
    row, model = approved_model(session)
    run = ScoreRun(as_of=as_of, model_version=model.version)
    accounts_query = select(Account.id)
    if account_id is not None:
        accounts_query = accounts_query.where(Account.id == account_id)
    account_ids = list(session.scalars(accounts_query))
    readings = _latest_readings(session, as_of, [k.name for k in model.kpis if not k.from_surveys])
    surveys = _surveys(session, model, as_of)
    snapshots: list[dict[str, Any]] = []
    found: dict[deviation.Key, str] = {}
    for acc in account_ids:
        result = score_account(model, readings.get(acc, []), surveys.get(acc, []), as_of)
        snapshots.append(_snapshot_row(acc, as_of, row.id, result))
        for finding in result.findings:
            found[(acc, finding.kind, finding.kpi)] = finding.detail
        run.accounts += 1
        run.scored += result.score is not None
        run.provisional += result.provisional
        if result.bucket:
            run.buckets[result.bucket] = run.buckets.get(result.bucket, 0) + 1
    newest = session.scalar(select(func.max(ScoreSnapshot.as_of)))
    delete_query = delete(ScoreSnapshot).where(ScoreSnapshot.as_of == as_of)
    if account_id is not None:
        delete_query = delete_query.where(ScoreSnapshot.account_id == account_id)
    session.execute(delete_query)
    for start in range(0, len(snapshots), 5000):
        session.execute(insert(ScoreSnapshot), snapshots[start : start + 5000])
    scope = set(account_ids) if account_id is not None else None
    if newest is None or as_of >= newest:  # a backfill of the past must not rewrite today's findings
        run.deviations = deviation.sync(session, found, INPUT_KINDS, now, scope=scope)
    return run


def _snapshot_row(account_id: int, as_of: datetime, model_id: int, result: ScoreResult) -> dict[str, Any]:
    components = [
        {
            "kpi": c.kpi,
            "raw": c.raw,
            "normalized": c.normalized,
            "weight": c.weight,
            "effective_weight": c.effective_weight,
            "contribution": c.contribution,
            "status": c.status,
            "observed_at": c.observed_at.isoformat() if c.observed_at else None,
        }
        for c in result.components
    ]
    return {
        "account_id": account_id,
        "as_of": as_of,
        "score": result.score,
        "bucket": result.bucket,
        "model_id": model_id,
        "components": components,
        "provisional": result.provisional,
    }


def history(session: Session, account_id: int, limit: int | None = None) -> list[ScoreSnapshot]:
    """An account's snapshots, oldest first."""
    query = select(ScoreSnapshot).where(ScoreSnapshot.account_id == account_id).order_by(ScoreSnapshot.as_of)
    rows = list(session.scalars(query))
    return rows[-limit:] if limit else rows


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


def _components(snapshot: ScoreSnapshot) -> list[Component]:
    return [
        Component(
            c["kpi"],
            c["raw"],
            c["normalized"],
            c["weight"],
            c["effective_weight"],
            c["contribution"],
            None,
            c["status"],
        )
        for c in snapshot.components
    ]


def account_trend(session: Session, account_id: int, now: datetime, limit: int = 12) -> dict[str, Any]:
    """Score history, sparkline, 30-day change and direction, and per-KPI contribution changes (why it moved)."""
    snapshots = history(session, account_id)
    points = [(s.as_of, s.score) for s in snapshots]
    shown = snapshots[-limit:] if limit else snapshots
    changes: list[tuple[str, float]] = []
    previous = None
    if len(snapshots) >= 2:
        changes = [c for c in contribution_changes(_components(snapshots[-2]), _components(snapshots[-1])) if c[1]]
        before, latest = snapshots[-2], snapshots[-1]
        if before.score is not None and latest.score is not None:
            previous = {"as_of": before.as_of.isoformat(), "score": before.score,
                        "change": round(latest.score - before.score, 2)}
    return {
        "history": [
            {"as_of": s.as_of.isoformat(), "score": s.score, "bucket": s.bucket, "provisional": s.provisional}
            for s in shown
        ],
        "sparkline": trends.sparkline([s.score for s in shown], 0, 100),
        "change_30d": trends.score_change(points, now, 30) if points else None,
        "direction": trends.direction(points, now, 30) if points else "flat",
        "contribution_changes": changes,
        "previous": previous,
    }
