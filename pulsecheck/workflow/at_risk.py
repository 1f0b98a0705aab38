"""Accounts at risk as of a moment, and the bulk-query pieces the portfolio report and review cycles share: the
scope filter, the latest snapshot per account, escalations open at a moment. A few queries, never one per account."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from pulsecheck.errors import RefusedError
from pulsecheck.rules.priority import PriorityMatrix, priority_score
from pulsecheck.storage.facts import compute_facts
from pulsecheck.storage.models import Account, Escalation, ScoreSnapshot, User
from pulsecheck.vocab import PRIORITIES
from pulsecheck.workflow.escalations import URGENCY
from pulsecheck.workflow.models import approved_model

# Above this many ids, filter in Python instead of an SQL `IN (...)` (SQLite caps bound parameters).
IN_LIMIT = 2000
FACTS_CHUNK = 5000  # ids per compute_facts call (well under SQLite's 32766 bound parameters)
FEW = 500  # up to this many ids, facts by id list whatever the size of the portfolio


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
    priority_score: float = 0.0  # orders accounts of one priority (the most urgent escalation's, else computed)

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
            "priority_score": self.priority_score,
            "reasons": list(self.reasons),
            "days_to_renewal": self.days_to_renewal,
            "open_escalations": self.open_escalations,
        }


def newest_snapshots(as_of: datetime, scope: Scope) -> Any:
    """A subquery of (account_id, as_of): each account's newest snapshot time on or before `as_of`, in scope
    (SQL side only: join it to score_snapshots on both columns)."""
    return scope.where(
        select(ScoreSnapshot.account_id, func.max(ScoreSnapshot.as_of).label("as_of"))
        .where(ScoreSnapshot.as_of <= as_of)
        .group_by(ScoreSnapshot.account_id),
        ScoreSnapshot.account_id,
    ).subquery()


def latest_snapshots(
    session: Session, as_of: datetime, scope: Scope | None = None
) -> dict[int, tuple[float | None, str | None]]:
    """Account id → (score, bucket) of its latest snapshot on or before `as_of`."""
    scope = scope or Scope()
    newest = newest_snapshots(as_of, scope)
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


Open = tuple[str, str, float | None]  # an open escalation's priority, reason and priority score


def open_escalations(session: Session, as_of: datetime, scope: Scope) -> dict[int, list[Open]]:
    """Account id → [(priority, reason, score)] of escalations open at `as_of`, most urgent first."""
    query = scope.where(
        select(Escalation.account_id, Escalation.priority, Escalation.reason, Escalation.priority_score)
        .where(open_at(as_of))
        .order_by(*URGENCY),
        Escalation.account_id,
    )
    found: dict[int, list[Open]] = {}
    for acc, priority, reason, score in session.execute(query):
        if scope.keeps(acc):
            found.setdefault(acc, []).append((priority, reason, score))
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
    escalated = open_escalations(session, as_of, scope)
    flagged = {acc for acc, (_, bucket) in snapshots.items() if lowest is not None and bucket == lowest}
    flagged |= set(escalated)
    if not flagged:
        return []
    facts = _facts_for(session, as_of, flagged)
    found = [
        assess(
            row, snapshots.get(row[0], (None, None)), facts.get(row[0], {}), escalated.get(row[0], []), lowest, priority
        )
        for row in _accounts(session, flagged)
    ]
    found.sort(key=_urgency)
    return found


def _accounts(session: Session, ids: set[int]) -> list[tuple[int, str, str, str | None, str | None]]:
    """(id, external id, name, segment, owner name) of the given accounts."""
    owner = aliased(User)
    query = select(Account.id, Account.external_id, Account.name, Account.segment, owner.name).outerjoin(
        owner, owner.id == Account.owner_id
    )
    rows = session.execute(Scope(account_ids=frozenset(ids)).where(query, Account.id))
    return [(acc, ext, name, segment, owner_name) for acc, ext, name, segment, owner_name in rows if acc in ids]


def assess(
    row: tuple[int, str, str, str | None, str | None],
    snapshot: tuple[float | None, str | None],
    fact: dict[str, Any],
    escalations: list[Open],
    lowest: str | None,
    priority: PriorityMatrix,
) -> AtRisk:
    """One flagged account: why it is at risk, and its priority (`row`: id, external id, name, segment, owner
    name; `fact`: the facts the priority matrix reads)."""
    acc, external_id, name, segment_name, owner_name = row
    score, bucket = snapshot
    reasons = [f"bucket {bucket} (score {_number(score)})"] if lowest is not None and bucket == lowest else []
    reasons += [f"escalation {p}: {reason}" for p, reason, _ in escalations]
    reasons += priority.reasons(fact)  # the matrix's aggravating criteria: renewal soon, ARR, open issues
    level = escalations[0][0] if escalations else priority.priority("high", fact)
    stored = escalations[0][2] if escalations else None
    urgency = stored if stored is not None else priority_score("high", fact)
    return AtRisk(
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
        priority_score=urgency,
    )


def _urgency(item: AtRisk) -> tuple[int, int, float, str]:
    # Within a priority the lower health score first (the SOP's order; the priority score is shown beside it).
    rank = PRIORITIES.index(item.priority) if item.priority in PRIORITIES else len(PRIORITIES)
    return (rank, item.score is None, item.score if item.score is not None else 0.0, item.external_id)


def _facts_for(session: Session, as_of: datetime, account_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Facts for the given accounts in bulk: by id list in chunks (SQLite pushes the ids into its window queries),
    or for every account at once when the list covers most of the portfolio."""
    ids = sorted(account_ids)
    # a few ids (a page of the live portfolio) go by id without counting the accounts: the same facts
    if len(ids) > FEW and 2 * len(ids) > (session.scalar(select(func.count(Account.id))) or 0):
        return compute_facts(session, as_of)
    facts: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), FACTS_CHUNK):
        facts.update(compute_facts(session, as_of, account_ids=ids[start : start + FACTS_CHUNK]))
    return facts


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.1f}"
