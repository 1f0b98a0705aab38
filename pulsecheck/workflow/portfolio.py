"""The portfolio picture as of a moment (`report portfolio`): the result types and their JSON shape, and the
bulk queries behind each figure: buckets, scores, trend, ARR and owners, group subscores, overdue reviews, open
escalations and deviations; the scorecards of the most urgent at-risk accounts when asked for. The at-risk list
and the shared query pieces are in `workflow.at_risk`, the scorecard in `workflow.scorecards`.

On SQLAlchemy Core (issue 17): the CLI reads with a connection, the web app (`/api/v1/portfolio`) passes its
session; neither the ORM nor the mapped classes are imported here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select

from pulsecheck.errors import InputError, RefusedError
from pulsecheck.rules.priority import PriorityMatrix
from pulsecheck.scoring.model import STATUS_COLORS, ScoringModel
from pulsecheck.storage.more_tables import DEVIATIONS, ESCALATIONS
from pulsecheck.storage.tables import ACCOUNTS, REVIEWS, SCORE_SNAPSHOTS, USERS
from pulsecheck.workflow.at_risk import AtRisk, Scope, at_risk, latest_snapshots, newest_snapshots, open_at
from pulsecheck.workflow.model_reading import tree_order
from pulsecheck.workflow.models import approved_model
from pulsecheck.workflow.scorecards import ModelCache, scorecard

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

_ACC, _SNAP, _REVIEW, _ESC, _DEV = ACCOUNTS.c, SCORE_SNAPSHOTS.c, REVIEWS.c, ESCALATIONS.c, DEVIATIONS.c

OPEN_REVIEW_STATES = ("draft", "submitted")  # approved reviews are done, waiting to be closed
AGE_BANDS = ((7, "0-7d"), (30, "8-30d"), (90, "31-90d"), (None, ">90d"))
HISTOGRAM_BINS = 10
TREND_MONTHS = 24
SCORECARD_PAGES = 100  # at-risk accounts (the most urgent) whose scorecard the report carries: a bounded page
UNSCORED = "unscored"  # the ARR-at-risk key of at-risk accounts without a scored snapshot


@dataclass(frozen=True)
class BucketCount:
    """A bucket of the approved model (or one found in snapshots only) and how many accounts sit in it."""

    name: str
    below: float | None
    color: str
    count: int
    in_model: bool = True


@dataclass(frozen=True)
class TrendPoint:
    """One month: its main scoring run (the snapshot date with the most accounts), mean score, bucket counts."""

    month: str
    as_of: datetime
    accounts: int
    mean_score: float | None
    buckets: dict[str, int]


@dataclass(frozen=True)
class Arr:
    """ARR (an account without one counts 0): all accounts in scope, per bucket of the latest snapshot, and the
    at-risk accounts' (per their bucket; `unscored` for those without a snapshot)."""

    total: float
    by_bucket: dict[str, float]
    at_risk: float
    at_risk_by_bucket: dict[str, float]


@dataclass(frozen=True)
class OwnerRow:
    """One account owner (the CSM; None: accounts without an owner) and their book of accounts."""

    owner: str | None
    accounts: int
    arr: float
    mean_score: float | None  # over the owner's accounts with a scored latest snapshot
    at_risk: int
    arr_at_risk: float
    open_escalations: int  # open or acknowledged, on the owner's accounts

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {
            "owner": self.owner,
            "accounts": self.accounts,
            "arr": self.arr,
            "mean_score": self.mean_score,
            "at_risk": self.at_risk,
            "arr_at_risk": self.arr_at_risk,
            "open_escalations": self.open_escalations,
        }


@dataclass(frozen=True)
class GroupMean:
    """A KPI group of the approved model: its mean subscore over the latest snapshots, and over the previous
    month's main scoring run (the one the trend uses)."""

    name: str
    label: str
    depth: int
    mean: float | None  # rounded to 2 places, as previous and change (worked out before rounding)
    accounts: int  # latest snapshots with a subscore for the group
    previous: float | None
    change: float | None  # mean - previous, when both exist

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {
            "name": self.name,
            "label": self.label,
            "depth": self.depth,
            "mean": self.mean,
            "accounts": self.accounts,
            "previous": self.previous,
            "change": self.change,
        }


@dataclass
class Portfolio:
    """Every figure of `report portfolio`."""

    as_of: datetime
    segment: str | None
    model_version: str | None
    accounts: int
    unscored: int
    buckets: list[BucketCount]
    histogram: list[tuple[int, int, int]]  # (from, to, accounts): scores from <= s < to (the last bin includes 100)
    trend: list[TrendPoint]
    at_risk: list[AtRisk]
    overdue_reviews: list[dict[str, Any]]
    escalations: list[dict[str, Any]]
    deviations: dict[str, dict[str, int]]  # status (open | accepted) -> kind -> count
    arr: Arr = field(default_factory=lambda: Arr(0.0, {}, 0.0, {}))
    owners: list[OwnerRow] = field(default_factory=list)  # most at-risk accounts first
    groups: list[GroupMean] = field(default_factory=list)  # in the model's tree order
    groups_previous_as_of: datetime | None = None  # the run `GroupMean.previous` is of
    kpis: list[str] = field(default_factory=list)  # the approved model's KPIs (scored and tracked), model order
    status_colors: dict[str, str] = field(default_factory=lambda: dict(STATUS_COLORS))
    scorecards: list[dict[str, Any]] = field(default_factory=list)  # workflow.scorecards.scorecard, at-risk order
    scorecard_limit: int = 0  # how many at-risk accounts were asked for (the most urgent first)

    @property
    def age_bands(self) -> list[str]:
        """The labels of the overdue-review age bands, youngest first."""
        return [band for _, band in AGE_BANDS]

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape of `report portfolio --json` (documented in README)."""
        return {
            "as_of": self.as_of.isoformat(),
            "segment": self.segment,
            "model_version": self.model_version,
            "accounts": self.accounts,
            "unscored": self.unscored,
            "buckets": {b.name: b.count for b in self.buckets},
            "bucket_colors": {b.name: b.color for b in self.buckets},
            "score_histogram": [{"from": lo, "to": hi, "accounts": n} for lo, hi, n in self.histogram],
            "trend": [
                {
                    "month": p.month,
                    "as_of": p.as_of.isoformat(),
                    "accounts": p.accounts,
                    "mean_score": p.mean_score,
                    "buckets": p.buckets,
                }
                for p in self.trend
            ],
            "at_risk": [a.as_dict() for a in self.at_risk],
            "overdue_reviews": self.overdue_reviews,
            "open_escalations": {
                "count": len(self.escalations),
                "by_priority": self.escalations_by_priority(),
                "items": self.escalations,
            },
            "open_deviations": {
                "count": sum(self.deviations.get("open", {}).values()),
                "by_kind": self.deviations.get("open", {}),
                "accepted_by_kind": self.deviations.get("accepted", {}),
            },
            "arr": {
                "total": self.arr.total,
                "by_bucket": {b.name: self.arr.by_bucket.get(b.name, 0.0) for b in self.buckets},
                "at_risk": self.arr.at_risk,
                "at_risk_by_bucket": self.arr_at_risk_by_bucket(),
            },
            "owners": [o.as_dict() for o in self.owners],
            "groups": {
                "previous_as_of": self.groups_previous_as_of.isoformat() if self.groups_previous_as_of else None,
                "items": [g.as_dict() for g in self.groups],
            },
            "status_colors": self.status_colors,
            "kpi_heat": {"kpis": self.heat_kpis(), "rows": self.heat_rows()},
            "scorecards": {"limit": self.scorecard_limit, "items": self.scorecards},
        }

    def arr_at_risk_by_bucket(self) -> dict[str, float]:
        """Bucket → ARR of its at-risk accounts, in bucket order, `unscored` last when there are any."""
        found = {b.name: self.arr.at_risk_by_bucket.get(b.name, 0.0) for b in self.buckets}
        if UNSCORED in self.arr.at_risk_by_bucket and UNSCORED not in found:
            found[UNSCORED] = self.arr.at_risk_by_bucket[UNSCORED]
        return found

    def heat_kpis(self) -> list[str]:
        """The heat table's columns: the approved model's KPIs, then any other a scorecard shows (older model)."""
        return heat_columns(self.kpis, self.scorecards)

    def heat_rows(self) -> list[dict[str, Any]]:
        """One row per scorecard (the at-risk accounts, most urgent first): KPI → {raw, normalized, rating}."""
        return [heat_row(card) for card in self.scorecards]

    def escalations_by_priority(self) -> dict[str, dict[str, int]]:
        """Priority → {"count", and one count per age band}, most urgent first."""
        table: dict[str, dict[str, int]] = {}
        for item in sorted(self.escalations, key=lambda e: e["priority"]):
            row = table.setdefault(item["priority"], {"count": 0, **{band: 0 for _, band in AGE_BANDS}})
            row["count"] += 1
            row[age_band(item["age_days"])] += 1
        return table


def age_band(days: int) -> str:
    """The age band label of an age in days."""
    for limit, label in AGE_BANDS:
        if limit is None or days <= limit:
            return label
    return AGE_BANDS[-1][1]


def segments(db: Session | Connection) -> list[str]:
    """The segments that have accounts: a loose index scan (each next segment is the smallest one above the
    last, one probe of ix_accounts_segment), not a DISTINCT over every account."""
    found = select(func.min(_ACC.segment).label("segment")).cte("found", recursive=True)
    above = ACCOUNTS.alias("accounts_1")
    found = found.union_all(
        select(select(func.min(above.c.segment)).where(above.c.segment > found.c.segment).scalar_subquery())
        .where(found.c.segment.is_not(None))
    )
    query = select(found.c.segment).where(found.c.segment.is_not(None)).order_by(found.c.segment)
    return [s for s in db.scalars(query) if s]


def check_segment(db: Session | Connection, segment: str | None) -> None:
    """Refuse (as bad input) a segment no account belongs to."""
    if segment is None:
        return
    if segment and db.scalar(select(_ACC.id).where(_ACC.segment == segment).limit(1)) is not None:
        return
    known = segments(db)
    if segment not in known:
        raise InputError(f"--segment {segment}: unknown segment (known: {', '.join(known) or 'none'})")


def build_portfolio(
    db: Session | Connection, as_of: datetime, priority: PriorityMatrix, segment: str | None = None,
    scorecards: int = 0,
) -> Portfolio:
    """Every figure of the portfolio report as of `as_of`, for one segment or all accounts; with `scorecards`,
    the scorecards of that many at-risk accounts, the most urgent first (one query set per account: keep it small)."""
    check_segment(db, segment)
    scope = Scope(segment)
    accounts = db.scalar(scope.where(select(func.count(_ACC.id)), _ACC.id)) or 0
    latest = latest_snapshots(db, as_of, scope)
    try:
        row, model = approved_model(db)
    except RefusedError:
        row, model = None, None
    buckets = bucket_counts(model, latest)
    risky = at_risk(db, as_of, priority, segment=segment, latest=latest)
    arr, owners = book(_account_rows(db, scope), latest, risky)
    months = trend(db, as_of, scope)
    previous = months[-2].as_of if len(months) >= 2 else None
    return Portfolio(
        as_of=as_of,
        segment=segment,
        model_version=row.version if row else None,
        accounts=accounts,
        unscored=accounts - sum(1 for score, _ in latest.values() if score is not None),
        buckets=buckets,
        histogram=histogram([score for score, _ in latest.values()]),
        trend=months,
        at_risk=risky,
        overdue_reviews=overdue_reviews(db, as_of, scope),
        escalations=open_escalations(db, as_of, scope),
        deviations=open_deviations(db, as_of, scope),
        arr=arr,
        owners=owners,
        groups=group_means(db, as_of, scope, model, previous),
        groups_previous_as_of=previous if model is not None and model.groups else None,
        kpis=[k.name for k in model.kpis] if model else [],
        status_colors=dict(model.statuses) if model else dict(STATUS_COLORS),
        scorecards=at_risk_scorecards(db, as_of, risky, scorecards),
        scorecard_limit=scorecards,
    )


def bucket_counts(model: ScoringModel | None, latest: dict[int, tuple[float | None, str | None]]) -> list[BucketCount]:
    """The model's buckets with their counts of latest snapshots, then (in grey) buckets of an older model that
    still hold latest snapshots."""
    counts: dict[str, int] = {}
    for _, bucket in latest.values():
        if bucket is not None:
            counts[bucket] = counts.get(bucket, 0) + 1
    known = [BucketCount(b.name, b.below, b.color, counts.pop(b.name, 0)) for b in (model.buckets if model else ())]
    known += [BucketCount(name, None, "gray", n, in_model=False) for name, n in sorted(counts.items())]
    return known


def _account_rows(db: Session | Connection, scope: Scope) -> Iterable[tuple[int, float | None, str | None]]:
    """(id, ARR, owner name) of every account in scope, streamed."""
    query = scope.where(
        select(_ACC.id, _ACC.arr, USERS.c.name).outerjoin(USERS, USERS.c.id == _ACC.owner_id), _ACC.id
    )
    return ((acc, arr, owner) for acc, arr, owner in db.execute(query) if scope.keeps(acc))


def book(
    accounts: Iterable[tuple[int, float | None, str | None]],
    latest: dict[int, tuple[float | None, str | None]],
    risky: list[AtRisk],
) -> tuple[Arr, list[OwnerRow]]:
    """ARR in total, per bucket and at risk, and one row per owner, from (id, ARR, owner) of each account in scope,
    its latest (score, bucket) and the at-risk list; one pass, a few numbers per owner kept."""
    flagged = {item.account_id: item for item in risky}
    total = at_risk_total = 0.0
    by_bucket: dict[str, float] = {}
    at_risk_by_bucket: dict[str, float] = {}
    # owner → [accounts, arr, scored, score sum, at risk, arr at risk, open escalations]
    owners: dict[str | None, list[float]] = {}
    for acc, arr, owner in accounts:
        value = arr or 0.0
        score, bucket = latest.get(acc, (None, None))
        total += value
        if bucket is not None:
            by_bucket[bucket] = by_bucket.get(bucket, 0.0) + value
        row = owners.setdefault(owner, [0, 0.0, 0, 0.0, 0, 0.0, 0])
        row[0] += 1
        row[1] += value
        if score is not None:
            row[2] += 1
            row[3] += score
        item = flagged.get(acc)
        if item is not None:
            at_risk_total += value
            key = bucket if bucket is not None else UNSCORED
            at_risk_by_bucket[key] = at_risk_by_bucket.get(key, 0.0) + value
            row[4] += 1
            row[5] += value
            row[6] += item.open_escalations
    rows = [
        OwnerRow(
            owner=owner,
            accounts=int(n),
            arr=arr_sum,
            mean_score=round(score_sum / scored, 2) if scored else None,
            at_risk=int(risk),
            arr_at_risk=risk_arr,
            open_escalations=int(escalated),
        )
        for owner, (n, arr_sum, scored, score_sum, risk, risk_arr, escalated) in owners.items()
    ]
    rows.sort(key=lambda r: (-r.at_risk, -r.arr_at_risk, -r.arr, r.owner is None, r.owner or ""))
    return Arr(total, by_bucket, at_risk_total, at_risk_by_bucket), rows


def group_means(
    db: Session | Connection, as_of: datetime, scope: Scope, model: ScoringModel | None, previous: datetime | None
) -> list[GroupMean]:
    """Each group of `model`, in tree order: its mean subscore over the latest snapshots in scope, and over the
    snapshots of the run at `previous` (the trend's month before). Averaged in SQL, two queries."""
    if model is None or not model.groups:
        return []
    order = tree_order(model)
    names = [name for name, _ in order]
    newest = newest_snapshots(as_of, scope)
    latest = _mean_subscores(
        db,
        names,
        lambda q: q.join(newest, and_(newest.c.account_id == _SNAP.account_id, newest.c.as_of == _SNAP.as_of)),
    )
    before: dict[str, tuple[float | None, int]] = {}
    if previous is not None:
        before = _mean_subscores(
            db, names, lambda q: scope.where(q.where(_SNAP.as_of == previous), _SNAP.account_id)
        )
    labels = {g.name: g.label for g in model.groups}
    found = []
    for name, depth in order:
        mean, accounts = latest[name]
        earlier = before.get(name, (None, 0))[0]
        change = None if mean is None or earlier is None else _round(mean - earlier)
        found.append(GroupMean(name, labels[name], depth, _round(mean), accounts, _round(earlier), change))
    return found


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _mean_subscores(
    db: Session | Connection, names: list[str], restrict: Any
) -> dict[str, tuple[float | None, int]]:
    """Group → (mean subscore, how many snapshots have one) over the snapshots `restrict`
    selects (a function narrowing a select on score_snapshots)."""
    values = [_SNAP.groups[name].as_float() for name in names]
    columns = [*(func.avg(v) for v in values), *(func.count(v) for v in values)]
    query = restrict(select(*columns).select_from(SCORE_SNAPSHOTS))
    row = db.execute(query).one()
    means, counts = row[: len(names)], row[len(names) :]
    return {
        name: (float(mean) if mean is not None else None, int(count or 0))
        for name, mean, count in zip(names, means, counts, strict=True)
    }


def at_risk_scorecards(
    db: Session | Connection, as_of: datetime, risky: list[AtRisk], limit: int
) -> list[dict[str, Any]]:
    """The scorecards (workflow.scorecards) of the first `limit` at-risk accounts as of `as_of`; an account never
    scored by then has none. Each model version is parsed once."""
    models = ModelCache(db)
    cards = []
    for item in risky[: max(0, limit)]:
        try:
            cards.append(scorecard(db, item.external_id, as_of, models=models))
        except RefusedError:  # escalated, never scored
            continue
    return cards


def heat_columns(kpis: list[str], cards: list[dict[str, Any]]) -> list[str]:
    """The model's KPIs, then any other KPI a scorecard shows (one scored with an older model), first seen first."""
    columns = list(kpis)
    seen = set(columns)
    for card in cards:
        for kpi in card["kpis"]:
            if kpi["kpi"] not in seen:
                seen.add(kpi["kpi"])
                columns.append(kpi["kpi"])
    return columns


def heat_row(card: dict[str, Any]) -> dict[str, Any]:
    """One heat-table row of a scorecard: the account, its score and bucket, KPI → {raw, normalized, rating}
    (rating concern | neutral | strength, None for a missing value)."""
    return {
        "account": card["account"]["id"],
        "name": card["account"]["name"],
        "score": card["score"],
        "bucket": card["bucket"],
        "cells": {
            k["kpi"]: {"raw": k["raw"], "normalized": k["normalized"], "rating": k["rating"]} for k in card["kpis"]
        },
    }


def histogram(scores: Iterable[float | None], bins: int = HISTOGRAM_BINS) -> list[tuple[int, int, int]]:
    """Counts of scores in `bins` equal bins over 0..100 (100 falls in the last)."""
    width = 100 // bins
    counts = [0] * bins
    for score in scores:
        if score is not None:
            counts[min(bins - 1, max(0, int(score // width)))] += 1
    return [(i * width, (i + 1) * width, n) for i, n in enumerate(counts)]


def trend(db: Session | Connection, as_of: datetime, scope: Scope, months: int = TREND_MONTHS) -> list[TrendPoint]:
    """Per month up to `as_of`: the month's main scoring run, with its mean score and bucket counts."""
    query = scope.where(
        select(_SNAP.as_of, _SNAP.bucket, func.count(), func.count(_SNAP.score), func.sum(_SNAP.score))
        # coalesce() and grouping by bucket first keep SQLite off the as_of index: one scan of the table beats a
        # million row lookups through the index (about 2x faster on 100k accounts x 12 months).
        .where(func.coalesce(_SNAP.as_of, _SNAP.as_of) <= as_of)
        .group_by(_SNAP.bucket, _SNAP.as_of),
        _SNAP.account_id,
    )
    runs: dict[datetime, dict[str, Any]] = {}
    for when, bucket, count, scored, total in db.execute(query):
        run = runs.setdefault(when, {"accounts": 0, "scored": 0, "total": 0.0, "buckets": {}})
        run["accounts"] += count
        run["scored"] += scored
        run["total"] += total or 0.0
        if bucket is not None:
            run["buckets"][bucket] = run["buckets"].get(bucket, 0) + count
    best: dict[str, datetime] = {}
    for when in sorted(runs):  # the largest run of each month; the later one on a tie
        month = when.strftime("%Y-%m")
        if month not in best or runs[when]["accounts"] >= runs[best[month]]["accounts"]:
            best[month] = when
    points = []
    for month in sorted(best)[-months:]:
        run = runs[best[month]]
        mean = round(run["total"] / run["scored"], 2) if run["scored"] else None
        points.append(TrendPoint(month, best[month], run["accounts"], mean, dict(run["buckets"])))
    return points


def overdue_reviews(db: Session | Connection, as_of: datetime, scope: Scope) -> list[dict[str, Any]]:
    """Draft or submitted reviews whose due date passed before `as_of`, the most overdue first."""
    query = scope.where(
        select(
            _REVIEW.id, _ACC.external_id, _ACC.name, _REVIEW.state, _REVIEW.reviewer, _REVIEW.priority, _REVIEW.due_at
        )
        .join(ACCOUNTS, _ACC.id == _REVIEW.account_id)
        .where(_REVIEW.state.in_(OPEN_REVIEW_STATES), _REVIEW.due_at < as_of, _REVIEW.created_at <= as_of)
        .order_by(_REVIEW.due_at, _REVIEW.id),
        _REVIEW.account_id,
    )
    return [
        {
            "id": review_id,
            "account": external_id,
            "name": name,
            "state": state,
            "reviewer": reviewer,
            "priority": level,
            "due_at": due_at.isoformat(),
            "days_overdue": (as_of - due_at).days,
        }
        for review_id, external_id, name, state, reviewer, level, due_at in db.execute(query)
    ]


def open_escalations(db: Session | Connection, as_of: datetime, scope: Scope) -> list[dict[str, Any]]:
    """Escalations open or acknowledged at `as_of`, most urgent then oldest first."""
    query = scope.where(
        select(
            _ESC.id,
            _ACC.external_id,
            _ESC.priority,
            _ESC.severity,
            _ESC.rule_id,
            _ESC.status,
            _ESC.owner,
            _ESC.opened_at,
            _ESC.reason,
            _ESC.resolved_at,
        )
        .join(ACCOUNTS, _ACC.id == _ESC.account_id)
        .where(open_at(as_of))
        .order_by(_ESC.priority, _ESC.opened_at, _ESC.id),
        _ESC.account_id,
    )
    return [
        {
            "id": escalation_id,
            "account": external_id,
            "priority": level,
            "severity": severity,
            "rule": rule,
            "status": "open" if status == "resolved" and resolved_at is not None and resolved_at > as_of else status,
            "owner": owner,
            "opened_at": opened_at.isoformat(),
            "age_days": (as_of - opened_at).days,
            "reason": reason,
        }
        for escalation_id, external_id, level, severity, rule, status, owner, opened_at, reason, resolved_at in (
            db.execute(query)
        )
    ]


def open_deviations(db: Session | Connection, as_of: datetime, scope: Scope) -> dict[str, dict[str, int]]:
    """Deviations live at `as_of` (found by then, not resolved by then): status → kind → count.

    Portfolio-wide deviations (no account, like model_mismatch) count in every segment."""
    live = and_(
        _DEV.found_at <= as_of,
        or_(_DEV.status != "resolved", _DEV.resolved_at > as_of),
    )
    query = select(_DEV.status, _DEV.kind, func.count()).where(live)
    if scope.segment is not None:
        in_segment = select(_ACC.id).where(_ACC.segment == scope.segment)
        query = query.where(or_(_DEV.account_id.is_(None), _DEV.account_id.in_(in_segment)))
    query = query.group_by(_DEV.status, _DEV.kind)
    found: dict[str, dict[str, int]] = {"open": {}, "accepted": {}}
    for status, kind, count in db.execute(query):
        key = "accepted" if status == "accepted" else "open"
        found[key][kind] = found[key].get(kind, 0) + count
    return {status: dict(sorted(kinds.items())) for status, kinds in found.items()}
