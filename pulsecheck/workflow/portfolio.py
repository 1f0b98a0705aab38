"""The portfolio picture as of a moment: buckets, scores, trend, at-risk accounts, overdue reviews, open
escalations and deviations. Every figure comes from a few bulk queries, never one query per account."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from pulsecheck.errors import InputError, RefusedError
from pulsecheck.rules.priority import PRIORITIES, PriorityMatrix
from pulsecheck.storage.facts import compute_facts
from pulsecheck.storage.models import Account, Deviation, Escalation, Review, ScoreSnapshot, User
from pulsecheck.workflow.models import approved_model

# Above this many ids, filter in Python instead of an SQL `IN (...)` (SQLite caps bound parameters).
IN_LIMIT = 2000
FACTS_CHUNK = 5000  # ids per compute_facts call (well under SQLite's 32766 bound parameters)


@dataclass(frozen=True)
class Scope:
    """Which accounts a figure covers: all, one segment, and/or an explicit id list."""

    segment: str | None = None
    account_ids: frozenset[int] | None = None

    def where(self, query: Any, column: Any) -> Any:
        """Restrict `query` on the account id `column` (only when that is cheap in SQL)."""
        if self.segment is not None:
            query = query.where(column.in_(select(Account.id).where(Account.segment == self.segment)))
        if self.account_ids is not None and len(self.account_ids) <= IN_LIMIT:
            query = query.where(column.in_(sorted(self.account_ids)))
        return query

    def keeps(self, account_id: int) -> bool:
        """The Python side of `where` for id lists too long for SQL."""
        return self.account_ids is None or account_id in self.account_ids

    def small_ids(self) -> list[int] | None:
        return sorted(self.account_ids) if self.account_ids is not None and len(self.account_ids) <= IN_LIMIT else None


@dataclass(frozen=True)
class AtRisk:
    """An account in the model's lowest bucket or with an open/acknowledged escalation."""

    account_id: int
    external_id: str
    name: str
    segment: str | None
    owner: str | None
    score: float | None
    bucket: str | None
    priority: str
    reasons: list[str]
    days_to_renewal: int | None
    open_escalations: int

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {
            "account": self.external_id,
            "name": self.name,
            "segment": self.segment,
            "owner": self.owner,
            "score": self.score,
            "bucket": self.bucket,
            "priority": self.priority,
            "reasons": list(self.reasons),
            "days_to_renewal": self.days_to_renewal,
            "open_escalations": self.open_escalations,
        }


def latest_snapshots(
    session: Session, as_of: datetime, scope: Scope | None = None
) -> dict[int, tuple[float | None, str | None]]:
    """Account id → (score, bucket) of its latest snapshot on or before `as_of`."""
    scope = scope or Scope()
    newest = scope.where(
        select(ScoreSnapshot.account_id, func.max(ScoreSnapshot.as_of).label("as_of"))
        .where(ScoreSnapshot.as_of <= as_of)
        .group_by(ScoreSnapshot.account_id),
        ScoreSnapshot.account_id,
    ).subquery()
    query = select(ScoreSnapshot.account_id, ScoreSnapshot.score, ScoreSnapshot.bucket).join(
        newest, and_(newest.c.account_id == ScoreSnapshot.account_id, newest.c.as_of == ScoreSnapshot.as_of)
    )
    return {acc: (score, bucket) for acc, score, bucket in session.execute(query) if scope.keeps(acc)}


def open_at(as_of: datetime) -> Any:
    """Escalations open (or acknowledged) at `as_of`."""
    return and_(
        Escalation.opened_at <= as_of,
        or_(Escalation.status != "resolved", Escalation.resolved_at > as_of),
    )


def lowest_bucket(session: Session) -> str | None:
    """The approved model's lowest bucket (buckets are ordered by `below`), None without an approved model."""
    try:
        _, model = approved_model(session)
    except RefusedError:
        return None
    return model.buckets[0].name if model.buckets else None


def _open_escalations(session: Session, as_of: datetime, scope: Scope) -> dict[int, list[tuple[str, str]]]:
    """Account id → [(priority, reason)] of escalations open at `as_of`, most urgent first."""
    query = scope.where(
        select(Escalation.account_id, Escalation.priority, Escalation.reason)
        .where(open_at(as_of))
        .order_by(Escalation.priority, Escalation.opened_at),
        Escalation.account_id,
    )
    found: dict[int, list[tuple[str, str]]] = {}
    for acc, priority, reason in session.execute(query):
        if scope.keeps(acc):
            found.setdefault(acc, []).append((priority, reason))
    return found


def at_risk(
    session: Session,
    as_of: datetime,
    priority: PriorityMatrix,
    account_ids: Collection[int] | None = None,
    segment: str | None = None,
    latest: dict[int, tuple[float | None, str | None]] | None = None,
) -> list[AtRisk]:
    """Accounts at risk at `as_of`, most urgent first (priority, then lowest score).

    Priority is the most urgent of the account's open escalations, else the priority matrix at severity high.
    `latest` may pass in `latest_snapshots(...)` already computed for the same scope.
    """
    scope = Scope(segment, frozenset(account_ids) if account_ids is not None else None)
    snapshots = latest if latest is not None else latest_snapshots(session, as_of, scope)
    lowest = lowest_bucket(session)
    escalated = _open_escalations(session, as_of, scope)
    flagged = {acc for acc, (_, bucket) in snapshots.items() if lowest is not None and bucket == lowest}
    flagged |= set(escalated)
    if not flagged:
        return []
    facts = _facts_for(session, as_of, flagged)
    owner = aliased(User)
    rows = session.execute(
        Scope(account_ids=frozenset(flagged)).where(
            select(Account.id, Account.external_id, Account.name, Account.segment, owner.name).outerjoin(
                owner, owner.id == Account.owner_id
            ),
            Account.id,
        )
    )
    found: list[AtRisk] = []
    for acc, external_id, name, segment_name, owner_name in rows:
        if acc not in flagged:
            continue
        score, bucket = snapshots.get(acc, (None, None))
        fact = facts.get(acc, {})
        escalations = escalated.get(acc, [])
        reasons = [f"bucket {bucket} (score {_number(score)})"] if lowest is not None and bucket == lowest else []
        reasons += [f"escalation {p}: {reason}" for p, reason in escalations]
        reasons += priority.reasons(fact)  # the matrix's aggravating criteria: renewal soon, ARR, open issues
        level = escalations[0][0] if escalations else priority.priority("high", fact)
        found.append(
            AtRisk(
                account_id=acc,
                external_id=external_id,
                name=name,
                segment=segment_name,
                owner=owner_name,
                score=score,
                bucket=bucket,
                priority=level,
                reasons=reasons,
                days_to_renewal=fact.get("days_to_renewal"),
                open_escalations=len(escalations),
            )
        )
    found.sort(key=_urgency)
    return found


def _urgency(item: AtRisk) -> tuple[int, int, float, str]:
    rank = PRIORITIES.index(item.priority) if item.priority in PRIORITIES else len(PRIORITIES)
    return (rank, item.score is None, item.score if item.score is not None else 0.0, item.external_id)


def _facts_for(session: Session, as_of: datetime, account_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Facts for the given accounts in bulk: by id list in chunks (SQLite pushes the ids into its window queries),
    or for every account at once when the list covers most of the portfolio."""
    ids = sorted(account_ids)
    total = session.scalar(select(func.count(Account.id))) or 0
    if 2 * len(ids) > total:
        return compute_facts(session, as_of)
    facts: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), FACTS_CHUNK):
        facts.update(compute_facts(session, as_of, account_ids=ids[start : start + FACTS_CHUNK]))
    return facts


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.1f}"


# --- the whole portfolio ------------------------------------------------------------------------------------

OPEN_REVIEW_STATES = ("draft", "submitted")  # approved reviews are done, waiting to be closed
AGE_BANDS = ((7, "0-7d"), (30, "8-30d"), (90, "31-90d"), (None, ">90d"))
HISTOGRAM_BINS = 10
TREND_MONTHS = 24


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
        }

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


def segments(session: Session) -> list[str]:
    """The segments that have accounts."""
    query = select(Account.segment).where(Account.segment.is_not(None)).distinct().order_by(Account.segment)
    return [s for s in session.scalars(query) if s]


def check_segment(session: Session, segment: str | None) -> None:
    """Refuse (as bad input) a segment no account belongs to."""
    if segment is None:
        return
    known = segments(session)
    if segment not in known:
        raise InputError(f"--segment {segment}: unknown segment (known: {', '.join(known) or 'none'})")


def build_portfolio(
    session: Session, as_of: datetime, priority: PriorityMatrix, segment: str | None = None
) -> Portfolio:
    """Every figure of the portfolio report as of `as_of`, for one segment or all accounts."""
    check_segment(session, segment)
    scope = Scope(segment)
    accounts = session.scalar(scope.where(select(func.count(Account.id)), Account.id)) or 0
    latest = latest_snapshots(session, as_of, scope)
    model_version, buckets = _bucket_counts(session, latest)
    return Portfolio(
        as_of=as_of,
        segment=segment,
        model_version=model_version,
        accounts=accounts,
        unscored=accounts - sum(1 for score, _ in latest.values() if score is not None),
        buckets=buckets,
        histogram=histogram([score for score, _ in latest.values()]),
        trend=trend(session, as_of, scope),
        at_risk=at_risk(session, as_of, priority, segment=segment, latest=latest),
        overdue_reviews=overdue_reviews(session, as_of, scope),
        escalations=open_escalations(session, as_of, scope),
        deviations=open_deviations(session, as_of, scope),
    )


def _bucket_counts(
    session: Session, latest: dict[int, tuple[float | None, str | None]]
) -> tuple[str | None, list[BucketCount]]:
    counts: dict[str, int] = {}
    for _, bucket in latest.values():
        if bucket is not None:
            counts[bucket] = counts.get(bucket, 0) + 1
    try:
        row, model = approved_model(session)
    except RefusedError:
        row, model = None, None
    known = [BucketCount(b.name, b.below, b.color, counts.pop(b.name, 0)) for b in (model.buckets if model else ())]
    # Buckets of an older model that still hold latest snapshots: shown, in grey, after the model's own.
    known += [BucketCount(name, None, "gray", n, in_model=False) for name, n in sorted(counts.items())]
    return (row.version if row else None), known


def histogram(scores: Iterable[float | None], bins: int = HISTOGRAM_BINS) -> list[tuple[int, int, int]]:
    """Counts of scores in `bins` equal bins over 0..100 (100 falls in the last)."""
    width = 100 // bins
    counts = [0] * bins
    for score in scores:
        if score is not None:
            counts[min(bins - 1, max(0, int(score // width)))] += 1
    return [(i * width, (i + 1) * width, n) for i, n in enumerate(counts)]


def trend(session: Session, as_of: datetime, scope: Scope, months: int = TREND_MONTHS) -> list[TrendPoint]:
    """Per month up to `as_of`: the month's main scoring run, with its mean score and bucket counts."""
    query = scope.where(
        select(
            ScoreSnapshot.as_of,
            ScoreSnapshot.bucket,
            func.count(),
            func.count(ScoreSnapshot.score),
            func.sum(ScoreSnapshot.score),
        )
        # coalesce() and grouping by bucket first keep SQLite off the as_of index: one scan of the table beats a
        # million row lookups through the index (about 2x faster on 100k accounts x 12 months).
        .where(func.coalesce(ScoreSnapshot.as_of, ScoreSnapshot.as_of) <= as_of)
        .group_by(ScoreSnapshot.bucket, ScoreSnapshot.as_of),
        ScoreSnapshot.account_id,
    )
    runs: dict[datetime, dict[str, Any]] = {}
    for when, bucket, count, scored, total in session.execute(query):
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


def overdue_reviews(session: Session, as_of: datetime, scope: Scope) -> list[dict[str, Any]]:
    """Draft or submitted reviews whose due date passed before `as_of`, the most overdue first."""
    query = scope.where(
        select(
            Review.id, Account.external_id, Account.name, Review.state, Review.reviewer, Review.priority, Review.due_at
        )
        .join(Account, Account.id == Review.account_id)
        .where(Review.state.in_(OPEN_REVIEW_STATES), Review.due_at < as_of, Review.created_at <= as_of)
        .order_by(Review.due_at, Review.id),
        Review.account_id,
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
        for review_id, external_id, name, state, reviewer, level, due_at in session.execute(query)
    ]


def open_escalations(session: Session, as_of: datetime, scope: Scope) -> list[dict[str, Any]]:
    """Escalations open or acknowledged at `as_of`, most urgent then oldest first."""
    query = scope.where(
        select(
            Escalation.id,
            Account.external_id,
            Escalation.priority,
            Escalation.severity,
            Escalation.rule_id,
            Escalation.status,
            Escalation.owner,
            Escalation.opened_at,
            Escalation.reason,
            Escalation.resolved_at,
        )
        .join(Account, Account.id == Escalation.account_id)
        .where(open_at(as_of))
        .order_by(Escalation.priority, Escalation.opened_at, Escalation.id),
        Escalation.account_id,
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
            session.execute(query)
        )
    ]


def open_deviations(session: Session, as_of: datetime, scope: Scope) -> dict[str, dict[str, int]]:
    """Deviations live at `as_of` (found by then, not resolved by then): status → kind → count.

    Portfolio-wide deviations (no account, like model_mismatch) count in every segment."""
    live = and_(
        Deviation.found_at <= as_of,
        or_(Deviation.status != "resolved", Deviation.resolved_at > as_of),
    )
    query = select(Deviation.status, Deviation.kind, func.count()).where(live)
    if scope.segment is not None:
        in_segment = select(Account.id).where(Account.segment == scope.segment)
        query = query.where(or_(Deviation.account_id.is_(None), Deviation.account_id.in_(in_segment)))
    query = query.group_by(Deviation.status, Deviation.kind)
    found: dict[str, dict[str, int]] = {"open": {}, "accepted": {}}
    for status, kind, count in session.execute(query):
        key = "accepted" if status == "accepted" else "open"
        found[key][kind] = found[key].get(kind, 0) + count
    return {status: dict(sorted(kinds.items())) for status, kinds in found.items()}
