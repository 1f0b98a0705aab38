"""Accounts at risk as of a moment, and the bulk-query pieces the portfolio report and review cycles share: the
scope filter, the latest snapshot per account, escalations open at a moment. A few queries, never one per account.

On SQLAlchemy Core (issue 17): `report portfolio` reads with a connection, the web app and the review cycles pass
their session; neither the ORM nor the mapped classes are imported here."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select

from pulsecheck.errors import RefusedError
from pulsecheck.rules.priority import PriorityMatrix, priority_score
from pulsecheck.storage.more_tables import ESCALATIONS, ISSUES
from pulsecheck.storage.tables import ACCOUNTS, SCORE_SNAPSHOTS, USERS
from pulsecheck.vocab import PRIORITIES
from pulsecheck.workflow.escalation_views import URGENCY
from pulsecheck.workflow.models import approved_model

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

_ACC, _SNAP, _ESC, _ISSUE = ACCOUNTS.c, SCORE_SNAPSHOTS.c, ESCALATIONS.c, ISSUES.c

# Above this many ids, filter in Python instead of an SQL `IN (...)` (SQLite caps bound parameters).
IN_LIMIT = 2000
FACTS_CHUNK = 5000  # ids per facts query (well under SQLite's 32766 bound parameters)
FEW = 500  # up to this many ids, facts by id list whatever the size of the portfolio
# The open issues the priority matrix counts: its fact name -> the issue kind (storage.facts' ISSUE_COUNTS).
ISSUE_COUNTS = {"open_complaints": "complaint", "open_billing_issues": "billing", "open_blockers": "blocker"}


@dataclass(frozen=True)
class Scope:
    """Which accounts a figure covers: all, one segment, and/or an explicit id list."""

    segment: str | None = None
    account_ids: frozenset[int] | None = None

    def where(self, query: Any, column: Any) -> Any:
        """Restrict `query` on the account id `column` (only when that is cheap in SQL)."""
        if self.segment is not None:
            query = query.where(column.in_(select(_ACC.id).where(_ACC.segment == self.segment)))
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
        select(_SNAP.account_id, func.max(_SNAP.as_of).label("as_of"))
        .where(_SNAP.as_of <= as_of)
        .group_by(_SNAP.account_id),
        _SNAP.account_id,
    ).subquery()


def latest_snapshots(
    db: Session | Connection, as_of: datetime, scope: Scope | None = None
) -> dict[int, tuple[float | None, str | None]]:
    """Account id → (score, bucket) of its latest snapshot on or before `as_of`."""
    scope = scope or Scope()
    newest = newest_snapshots(as_of, scope)
    query = select(_SNAP.account_id, _SNAP.score, _SNAP.bucket).join(
        newest, and_(newest.c.account_id == _SNAP.account_id, newest.c.as_of == _SNAP.as_of)
    )
    return {acc: (score, bucket) for acc, score, bucket in db.execute(query) if scope.keeps(acc)}


def open_at(as_of: datetime) -> Any:
    """Escalations open (or acknowledged) at `as_of`."""
    return and_(
        _ESC.opened_at <= as_of,
        or_(_ESC.status != "resolved", _ESC.resolved_at > as_of),
    )


def lowest_bucket(db: Session | Connection) -> str | None:
    """The approved model's lowest bucket (buckets are ordered by `below`), None without an approved model."""
    try:
        _, model = approved_model(db)
    except RefusedError:
        return None
    return model.buckets[0].name if model.buckets else None


Open = tuple[str, str, float | None]  # an open escalation's priority, reason and priority score


def open_escalations(db: Session | Connection, as_of: datetime, scope: Scope) -> dict[int, list[Open]]:
    """Account id → [(priority, reason, score)] of escalations open at `as_of`, most urgent first."""
    query = scope.where(
        select(_ESC.account_id, _ESC.priority, _ESC.reason, _ESC.priority_score)
        .where(open_at(as_of))
        .order_by(*URGENCY),
        _ESC.account_id,
    )
    found: dict[int, list[Open]] = {}
    for acc, priority, reason, score in db.execute(query):
        if scope.keeps(acc):
            found.setdefault(acc, []).append((priority, reason, score))
    return found


def at_risk(
    db: Session | Connection,
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
    snapshots = latest if latest is not None else latest_snapshots(db, as_of, scope)
    lowest = lowest_bucket(db)
    escalated = open_escalations(db, as_of, scope)
    flagged = {acc for acc, (_, bucket) in snapshots.items() if lowest is not None and bucket == lowest}
    flagged |= set(escalated)
    if not flagged:
        return []
    facts = _facts_for(db, as_of, flagged)
    found = [
        assess(
            row, snapshots.get(row[0], (None, None)), facts.get(row[0], {}), escalated.get(row[0], []), lowest, priority
        )
        for row in _accounts(db, flagged)
    ]
    found.sort(key=_urgency)
    return found


def _accounts(db: Session | Connection, ids: set[int]) -> list[tuple[int, str, str, str | None, str | None]]:
    """(id, external id, name, segment, owner name) of the given accounts."""
    owner = USERS.alias("owner")
    query = select(_ACC.id, _ACC.external_id, _ACC.name, _ACC.segment, owner.c.name).outerjoin(
        owner, owner.c.id == _ACC.owner_id
    )
    rows = db.execute(Scope(account_ids=frozenset(ids)).where(query, _ACC.id))
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


def _facts_for(db: Session | Connection, as_of: datetime, account_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The facts the priority matrix reads (`arr`, `days_to_renewal`, the open complaints, billing issues and
    blockers), as `storage.facts` names them, for the given accounts in bulk: by id list in chunks, or for every
    account at once when the list covers most of the portfolio."""
    ids = sorted(account_ids)
    # a few ids (a page of the live portfolio) go by id without counting the accounts: the same facts
    if len(ids) > FEW and 2 * len(ids) > (db.scalar(select(func.count(_ACC.id))) or 0):
        return _priority_facts(db, as_of, None)
    facts: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), FACTS_CHUNK):
        facts.update(_priority_facts(db, as_of, ids[start : start + FACTS_CHUNK]))
    return facts


def _priority_facts(db: Session | Connection, as_of: datetime, ids: list[int] | None) -> dict[int, dict[str, Any]]:
    """The priority matrix's facts of the accounts `ids` (None: all), two queries."""
    today = as_of.date()
    accounts = select(_ACC.id, _ACC.arr, _ACC.renewal_date)
    issues = (
        select(_ISSUE.account_id, _ISSUE.kind, func.count())
        .where(
            _ISSUE.kind.in_(ISSUE_COUNTS.values()),
            _ISSUE.opened_at <= as_of,
            or_(_ISSUE.closed_at.is_(None), _ISSUE.closed_at > as_of),
        )
        .group_by(_ISSUE.account_id, _ISSUE.kind)
    )
    if ids is not None:
        accounts, issues = accounts.where(_ACC.id.in_(ids)), issues.where(_ISSUE.account_id.in_(ids))
    facts = {
        acc: {
            "arr": arr,
            "days_to_renewal": (renewal - today).days if renewal else None,
            **dict.fromkeys(ISSUE_COUNTS, 0),
        }
        for acc, arr, renewal in db.execute(accounts)
    }
    named = {kind: name for name, kind in ISSUE_COUNTS.items()}
    for acc, kind, count in db.execute(issues):
        if acc in facts:
            facts[acc][named[kind]] = count
    return facts


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.1f}"
