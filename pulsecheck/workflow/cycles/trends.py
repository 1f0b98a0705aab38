"""The trends step of a review cycle: declining accounts, sudden changes, repeated low scores, and the SOP's
cross-checks for possible false negatives (healthy with open complaints or an early renewal) and false positives
(unhealthy, no open issue, rising usage)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.errors import RefusedError
from pulsecheck.storage.models import ReviewCycle, ScoreSnapshot
from pulsecheck.workflow.cycles.reading import account_names
from pulsecheck.workflow.cycles.service import CycleSettings

if TYPE_CHECKING:
    from pulsecheck.scoring.model import Bucket

FACTS_BY_ID = 2000  # up to this many accounts in scope, facts are computed for their ids only


def trends_result(session: Session, cycle: ReviewCycle, since: datetime, cfg: CycleSettings) -> dict[str, Any]:
    """The trends step's result over the cycle's scope, from its period start `since` to its as-of moment."""
    from pulsecheck.storage.facts import compute_facts
    from pulsecheck.workflow.models import approved_model

    try:
        buckets = list(approved_model(session)[1].buckets)
    except RefusedError:
        buckets = []
    low = cfg.low_below if cfg.low_below is not None else (buckets[0].below if buckets else None)
    scope = set(cycle.account_ids)
    ids = sorted(scope)
    facts = compute_facts(
        session,
        cycle.as_of,
        {"score_change": [cfg.decline_days]},
        low,
        account_ids=ids if len(ids) <= FACTS_BY_ID else None,
    )
    facts = {acc: f for acc, f in facts.items() if acc in scope}
    names = account_names(session)
    change = f"score_change_{cfg.decline_days}d"
    declining = [
        {"account": names[acc], "score": f["score"], "change": f[change]}
        for acc, f in facts.items()
        if f.get(change) is not None and f[change] <= -cfg.decline_points
    ]
    low_streaks = [
        {"account": names[acc], "score": f["score"], "streak": f["low_score_streak"]}
        for acc, f in facts.items()
        if low is not None and f["low_score_streak"] >= cfg.low_streak
    ]
    sudden = _sudden_changes(session, cycle, since, scope, cfg.sudden_change, names)
    negatives, positives = _cross_checks(session, cycle, facts, names, buckets, cfg)
    lists = (declining, sudden, low_streaks, negatives, positives)
    for items in lists:
        items.sort(key=lambda item: item["account"])
    flagged = sorted({item["account"] for items in lists for item in items})
    return {
        "thresholds": cfg.thresholds() | {"low_below": low},
        "declining": declining,
        "sudden_changes": sudden,
        "low_streaks": low_streaks,
        "possible_false_negatives": negatives,
        "possible_false_positives": positives,
        "flagged": flagged,
    }


def _cross_checks(
    session: Session,
    cycle: ReviewCycle,
    facts: Mapping[int, Mapping[str, Any]],
    names: Mapping[int, str],
    buckets: list[Bucket],
    cfg: CycleSettings,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(possible false negatives, possible false positives): healthy accounts with open complaints or a renewal
    soon, and unhealthy ones with no open issue and rising usage."""
    open_issues = _open_issues(session, cycle.as_of)
    usage = _usage_changes(session, cycle.as_of, cfg)
    healthy, unhealthy = (buckets[-1].name, buckets[0].name) if buckets else (None, None)
    negatives, positives = [], []
    for acc, f in facts.items():
        if healthy is not None and f["bucket"] == healthy:
            why = [f"{f['open_complaints']} open complaint(s)"] if f["open_complaints"] else []
            days = f["days_to_renewal"]
            if days is not None and 0 <= days <= cfg.renewal_days:
                why.append(f"renewal in {days} days")
            if why:
                negatives.append({"account": names[acc], "bucket": f["bucket"], "score": f["score"], "reasons": why})
        elif unhealthy is not None and f["bucket"] == unhealthy and not open_issues.get(acc) and usage.get(acc, 0) > 0:
            positives.append(
                {"account": names[acc], "bucket": f["bucket"], "score": f["score"], "usage_change": usage[acc]}
            )
    return negatives, positives


def _sudden_changes(
    session: Session,
    cycle: ReviewCycle,
    since: datetime,
    scope: Collection[int],
    threshold: float,
    names: Mapping[int, str],
) -> list[dict[str, Any]]:
    """Moves between consecutive snapshots of at least the threshold that ended inside the period."""
    from itertools import groupby

    from pulsecheck.scoring import trends

    query = (
        select(ScoreSnapshot.account_id, ScoreSnapshot.as_of, ScoreSnapshot.score)
        .where(ScoreSnapshot.as_of >= since - timedelta(days=92), ScoreSnapshot.as_of <= cycle.as_of)
        .order_by(ScoreSnapshot.account_id, ScoreSnapshot.as_of)
    )
    found = []
    for acc, rows in groupby(session.execute(query), key=lambda row: row[0]):
        if acc not in scope:
            continue
        for move in trends.sudden_changes([(when, score) for _, when, score in rows], threshold):
            if move.end >= since:  # snapshot times are aware datetimes
                found.append(
                    {
                        "account": names[acc],
                        "at": move.end.isoformat(),
                        "from": move.before,
                        "to": move.after,
                        "delta": move.delta,
                    }
                )
    return found


def _open_issues(session: Session, as_of: datetime) -> dict[int, int]:
    """Account id → issues of any kind open at `as_of`."""
    from sqlalchemy import func, or_

    from pulsecheck.storage.models import Issue

    query = (
        select(Issue.account_id, func.count())
        .where(Issue.opened_at <= as_of, or_(Issue.closed_at.is_(None), Issue.closed_at > as_of))
        .group_by(Issue.account_id)
    )
    return {acc: count for acc, count in session.execute(query)}


def _usage_changes(session: Session, as_of: datetime, cfg: CycleSettings) -> dict[int, float]:
    """Account id → last minus first usage reading within the decline window (accounts with two or more)."""
    from pulsecheck.storage.models import KpiReading

    since = as_of - timedelta(days=cfg.decline_days)
    query = (
        select(KpiReading.account_id, KpiReading.value)
        .where(
            KpiReading.kpi == cfg.usage_kpi,
            KpiReading.observed_at >= since,
            KpiReading.observed_at <= as_of,
        )
        .order_by(KpiReading.account_id, KpiReading.observed_at, KpiReading.id)
    )
    values: dict[int, list[float]] = {}
    for acc, value in session.execute(query):
        values.setdefault(acc, []).append(value)
    return {acc: round(v[-1] - v[0], 2) for acc, v in values.items() if len(v) >= 2}
