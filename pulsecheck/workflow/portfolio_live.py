"""The live portfolio (`/portfolio`, `/api/v1/portfolio/accounts`): the at-risk table filtered, searched, sorted
and paged in SQL, and the summary figures as aggregate queries over the latest snapshot per account.

The at-risk rule is `workflow.at_risk`'s (the model's lowest bucket, or an escalation open at the moment), and
an account's priority is the same: its most urgent open escalation's, else the priority matrix at severity
high, written here as an SQL expression so the database filters, sorts and counts by it. Only the rows of the
page shown are then assessed in Python (`at_risk` on their ids) for their reasons; no request loads every
account."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Float,
    String,
    and_,
    case,
    column,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
    values,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, aliased

from pulsecheck.errors import InputError, RefusedError
from pulsecheck.rules.priority import PriorityMatrix
from pulsecheck.storage import changes
from pulsecheck.storage.models import Account, Escalation, Issue, LatestSnapshot, Review, ScoreSnapshot, User
from pulsecheck.storage.paging import Page, PageRequest, fetch_page
from pulsecheck.vocab import PRIORITIES
from pulsecheck.workflow.at_risk import AtRisk, Open, Scope, assess, at_risk, open_at, open_escalations
from pulsecheck.workflow.models import approved_model
from pulsecheck.workflow.portfolio import OPEN_REVIEW_STATES, BucketCount, check_segment

ISSUE_KINDS = ("complaint", "billing", "blocker")  # the open issues the priority matrix counts (facts' ISSUE_COUNTS)
SORTS = ("urgency", "name", "score", "priority", "renewal", "owner", "arr")
KEPT_SCOPES = 16  # segment/owner scopes whose book a worker keeps (the least recently used go first)
KEPT_NARROWED = 32  # (sort, bucket, priority) row lists a kept book keeps besides its sorts


@dataclass(frozen=True)
class Filters:
    """Which accounts: `segment` and `owner` scope the summary and the table; `bucket`, `priority` and the search
    `q` (in the account's name or external id, case-insensitive) narrow the table only."""

    segment: str | None = None
    owner: str | None = None
    bucket: str | None = None
    priority: str | None = None
    q: str | None = None

    def check(self, session: Session) -> None:
        """Refuse (as bad input) a segment no account has, an unknown owner or priority."""
        check_segment(session, self.segment)
        if self.owner and session.scalar(select(User.id).where(User.name == self.owner)) is None:
            raise InputError(f"owner {self.owner!r}: unknown user")
        if self.priority and self.priority not in PRIORITIES:
            raise InputError(f"priority {self.priority!r}: choose from {', '.join(PRIORITIES)}")


@dataclass(frozen=True)
class Summary:
    """The figures above the table, for the accounts the segment and owner filters keep."""

    as_of: datetime
    model_version: str | None
    accounts: int
    unscored: int
    buckets: list[BucketCount]
    at_risk: int
    arr_at_risk: float
    by_priority: dict[str, int] = field(default_factory=dict)  # at-risk accounts per priority, most urgent first
    overdue_reviews: int = 0
    open_escalations: int = 0
    cells: dict[tuple[str | None, str], int] = field(default_factory=dict, repr=False)  # (bucket, priority) -> at risk

    def at_risk_total(self, bucket: str | None, priority: str | None) -> int:
        """How many accounts at risk are in `bucket` at `priority` (None: any), from the counts already made."""
        return sum(n for (b, p), n in self.cells.items() if bucket in (None, b) and priority in (None, p))

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape (`/api/v1/portfolio/summary`)."""
        return {
            "as_of": self.as_of.isoformat(),
            "model_version": self.model_version,
            "accounts": self.accounts,
            "unscored": self.unscored,
            "buckets": {b.name: b.count for b in self.buckets},
            "at_risk": self.at_risk,
            "arr_at_risk": self.arr_at_risk,
            "at_risk_by_priority": self.by_priority,
            "overdue_reviews": self.overdue_reviews,
            "open_escalations": self.open_escalations,
        }


@dataclass(frozen=True)
class AtRiskRow:
    """A row of the at-risk table: the account as `at_risk` assesses it, and its ARR."""

    risk: AtRisk
    arr: float | None

    def as_dict(self) -> dict[str, Any]:
        """The report's at-risk JSON shape, with the ARR."""
        return self.risk.as_dict() | {"arr": self.arr}


class _Book:
    """The SQL pieces of one request: every account (of the scope) with its latest snapshot, its open
    escalations and open issues at `as_of`, the at-risk flag and the priority."""

    def __init__(self, session: Session, as_of: datetime, matrix: PriorityMatrix, filters: Filters) -> None:
        self.as_of = as_of
        try:
            row, model = approved_model(session)
            self.model_version: str | None = row.version
            self.model_buckets = list(model.buckets)
        except RefusedError:
            self.model_version, self.model_buckets = None, []
        self.lowest = self.model_buckets[0].name if self.model_buckets else None
        self.latest_from, self.latest, self.latest_on = _latest(session, as_of)
        self.matrix = matrix
        self.scope = _scope(filters)

    # the SQL expressions below are built when a query needs them: a request served from a kept book needs none

    @cached_property
    def escalated(self) -> Any:
        return (
            select(
                Escalation.account_id,
                func.min(Escalation.priority).label("priority"),  # P1 < P2 < ...: the most urgent (URGENCY's first)
                func.count().label("open"),
            )
            .where(open_at(self.as_of))
            .group_by(Escalation.account_id)
            .subquery("escalated")
        )

    @cached_property
    def issues(self) -> Any:
        return (
            select(Issue.account_id, func.count().label("open"))
            .where(
                Issue.kind.in_(ISSUE_KINDS),
                Issue.opened_at <= self.as_of,
                or_(Issue.closed_at.is_(None), Issue.closed_at > self.as_of),
            )
            .group_by(Issue.account_id)
            .subquery("issues")
        )

    @cached_property
    def owner(self) -> Any:
        return aliased(User, name="owner")

    @cached_property
    def flagged(self) -> Any:
        flagged: Any = self.escalated.c.account_id.is_not(None)
        if self.lowest is not None:
            flagged = or_(flagged, self.latest.bucket == self.lowest)
        return flagged

    @cached_property
    def priority(self) -> Any:
        return func.coalesce(self.escalated.c.priority, self._matrix_priority(self.matrix))

    def _matrix_priority(self, matrix: PriorityMatrix) -> Any:
        """`PriorityMatrix.priority("high", facts)` in SQL: the base level raised once per criterion that holds."""
        today = self.as_of.date()  # as facts' days_to_renewal counts
        criteria = (
            case((Account.renewal_date.between(today, today + timedelta(days=matrix.renewal_within_days)), 1), else_=0)
            + case((Account.arr >= matrix.arr_at_least, 1), else_=0)
            + case((func.coalesce(self.issues.c.open, 0) >= matrix.open_issues_at_least, 1), else_=0)
        )
        level = literal(PRIORITIES.index(matrix.base.get("high", "P3"))) - criteria
        return case(
            *((level <= index, name) for index, name in enumerate(PRIORITIES)), else_=PRIORITIES[-1]
        )

    def joined(self, *columns: Any) -> Any:
        """SELECT `columns` over the accounts of the scope joined with everything the flag and priority need."""
        return (
            select(*columns)
            .select_from(Account)
            .outerjoin(self.latest_from, self.latest_on)
            .outerjoin(self.escalated, self.escalated.c.account_id == Account.id)
            .outerjoin(self.issues, self.issues.c.account_id == Account.id)
            .where(*self.scope)
        )


def summary(session: Session, as_of: datetime, matrix: PriorityMatrix, filters: Filters) -> Summary:
    """The summary figures in three aggregate queries (accounts by bucket and at-risk priority; open reviews;
    open escalations), whatever the size of the portfolio; from the worker's kept book while it is current."""
    filters.check(session)
    book = _Book(session, as_of, matrix, filters)
    kept = _kept_book(session, book, matrix, filters)
    if kept is not None:
        return _summary(session, book, kept.grouped, kept.escalations)
    return _summary(session, book, _grouped(session, book))


def _grouped(session: Session, book: _Book) -> list[Any]:
    """The summary's grouped rows: (bucket, at-risk priority or None, accounts, scored, ARR at risk)."""
    at_risk_priority = case((book.flagged, book.priority), else_=None)
    rows = session.execute(
        book.joined(
            book.latest.bucket,
            at_risk_priority,
            func.count(),
            func.count(book.latest.score),
            func.sum(case((book.flagged, Account.arr), else_=None)),
        ).group_by(book.latest.bucket, at_risk_priority)
    ).all()
    return list(rows)


class _Row(NamedTuple):
    """An account at risk of a kept book, with what the table filters and sorts it by: string columns as their
    rank in the database's own order (its collation), so that sorting here gives the order SQL gives."""

    id: int
    arr: float | None
    bucket: str | None
    score: float | None
    priority: str
    renewal: int | None  # the renewal date's ordinal
    name: str  # lower(name), as the database lowers it (the search)
    key: str  # lower(external_id)
    name_rank: int
    owner_rank: int | None  # None: no owner
    priority_rank: int
    id_rank: int  # the external id's
    external_id: str
    display: str  # the name as written
    segment: str | None
    owner: str | None  # the owner's name
    issues: int  # open complaints, billing issues and blockers (the priority matrix's count)


# each sort name -> [(column of _Row, descending by default)]: `_sort_clauses` over a kept book
_KEPT_COLUMNS: dict[str, list[tuple[str, bool]]] = {
    "urgency": [("priority_rank", False), ("score", False)],
    "name": [("name_rank", False)],
    "score": [("score", False)],
    "priority": [("priority_rank", False), ("score", False)],
    "renewal": [("renewal", False)],
    "owner": [("owner_rank", False)],
    "arr": [("arr", True)],
}


@dataclass
class _Kept:
    """A worker's copy of one scope's book, current while no transaction that wrote the book committed unseen
    by `snapshot` and the moment stays in [as_of, until) on the same day (the time-dependent parts: escalations
    and issues opening or closing, the renewal window counted from today, snapshots taken later)."""

    snapshot: str
    as_of: datetime
    until: datetime | None
    grouped: list[Any]
    escalations: int
    rows: list[_Row]
    open_escalations: dict[int, list[Open]] = field(default_factory=dict)  # account id -> most urgent first
    assessed: dict[int, AtRiskRow] = field(default_factory=dict)  # account id -> its row as assessed (`_kept_assessed`)
    orders: dict[str, list[_Row]] = field(default_factory=dict)
    narrowed_rows: dict[tuple[str, str | None, str | None], list[_Row]] = field(default_factory=dict)

    def current(self, as_of: datetime) -> bool:
        return self.as_of <= as_of and as_of.date() == self.as_of.date() and (self.until is None or as_of < self.until)

    def ordered(self, name: str) -> list[_Row]:
        """The rows in the order of sort `name` (sorted once per kept book)."""
        found = self.orders.get(name)
        if found is None:
            reverse = name.startswith("-")
            parts = _KEPT_COLUMNS[name.removeprefix("-")]

            def key(row: _Row) -> tuple[Any, ...]:
                out: list[Any] = []
                for column, descending in parts:
                    value = getattr(row, column)
                    out += (True, 0) if value is None else (False, -value if descending != reverse else value)
                out.append(-row.id_rank if reverse else row.id_rank)  # NULLs last either way, as SQL has them
                return tuple(out)

            found = self.orders[name] = sorted(self.rows, key=key)
        return found

    def narrowed(self, name: str, bucket: str | None, priority: str | None) -> list[_Row]:
        """The rows of `bucket` and `priority` (None: any) in the order of sort `name`, kept for the next request
        of the same (up to KEPT_NARROWED of them: then they start again)."""
        if not bucket and not priority:
            return self.ordered(name)
        found = self.narrowed_rows.get((name, bucket, priority))
        if found is None:
            found = [row for row in self.ordered(name)
                     if (not bucket or row.bucket == bucket) and (not priority or row.priority == priority)]
            if len(self.narrowed_rows) >= KEPT_NARROWED:
                self.narrowed_rows.clear()
            self.narrowed_rows[(name, bucket, priority)] = found
        return found


_KEPT: weakref.WeakKeyDictionary[Engine, OrderedDict[Any, _Kept]] = weakref.WeakKeyDictionary()
_READING: weakref.WeakKeyDictionary[Engine, dict[Any, threading.Lock]] = weakref.WeakKeyDictionary()
_KEPT_LOCK = threading.Lock()


def _kept_book(session: Session, book: _Book, matrix: PriorityMatrix, filters: Filters) -> _Kept | None:
    """The scope's book as this worker keeps it, computed again when the book changed (`storage.changes`) or
    the moment left its window; None where changes are not tracked (SQLite: one worker, the SQL path)."""
    if not changes.tracked(session):
        return None
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    scope = (filters.segment, filters.owner, book.model_version, book.lowest, book.latest_from is LatestSnapshot,
             tuple(sorted(matrix.base.items())), matrix.renewal_within_days, matrix.arr_at_least,
             matrix.open_issues_at_least)
    found = _current(session, engine, scope, book.as_of)
    if found is not None:
        return found
    with _KEPT_LOCK:
        reading = _READING.setdefault(engine, {}).setdefault(scope, threading.Lock())
    with reading:  # one thread of the worker reads a scope's book; the others wait for it, then take it
        found = _current(session, engine, scope, book.as_of)
        if found is not None:
            return found
        changes.prune(session)
        kept = _keep(session, book, changes.mark(session))
        with _KEPT_LOCK:
            scopes = _KEPT[engine]
            scopes[scope] = kept
            scopes.move_to_end(scope)
            while len(scopes) > KEPT_SCOPES:
                scopes.popitem(last=False)
    return kept


def _current(session: Session, engine: Engine, scope: Any, as_of: datetime) -> _Kept | None:
    """The scope's kept book if it holds at `as_of` and no transaction that wrote the book committed since."""
    with _KEPT_LOCK:
        kept = _KEPT.setdefault(engine, OrderedDict()).get(scope)
    if kept is None or not kept.current(as_of) or changes.changed_since(session, kept.snapshot):
        return None
    with _KEPT_LOCK:
        if scope in _KEPT[engine]:  # (another thread may have let it go meanwhile)
            _KEPT[engine].move_to_end(scope)
    return kept


def _keep(session: Session, book: _Book, snapshot: str) -> _Kept:
    """Read the scope's book: the summary's grouped rows, the open escalations, every account at risk with its
    sort ranks, and until when the moment may move on (read after `snapshot` was taken: they see at least what
    it sees)."""
    grouped = _grouped(session, book)
    escalations = _open_escalations(session, book)
    lowered = func.lower(Account.name)
    query = book.joined(
        Account.id, Account.arr, book.latest.bucket, book.latest.score, book.priority, Account.renewal_date,
        lowered, func.lower(Account.external_id), func.dense_rank().over(order_by=lowered), Account.owner_id,
        func.dense_rank().over(order_by=Account.external_id), Account.external_id, Account.name, Account.segment,
        func.coalesce(book.issues.c.open, 0),
    ).where(book.flagged)
    found = session.execute(query).all()
    # the few owners and priorities ranked apart (a sort of a handful of values, not of every row)
    ranked = select(User.id, User.name, func.dense_rank().over(order_by=User.name))
    owners: dict[int, tuple[str, int]] = {user_id: (name, rank) for user_id, name, rank in session.execute(ranked)}
    levels: dict[str, int] = {}
    if found:
        named = values(column("level", String()), name="levels").data([(level,) for level in {r[4] for r in found}])
        levels = dict(session.execute(select(named.c.level, func.dense_rank().over(order_by=named.c.level))).all())
    rows = [
        _Row(account_id, arr, bucket, score, priority, renewal.toordinal() if renewal is not None else None, name,
             key, name_rank, owners[owner_id][1] if owner_id is not None else None, levels[priority], id_rank,
             external_id, display, segment, owners[owner_id][0] if owner_id is not None else None, issues)
        for (account_id, arr, bucket, score, priority, renewal, name, key, name_rank, owner_id, id_rank, external_id,
             display, segment, issues) in found
    ]
    return _Kept(snapshot, book.as_of, _until(session, book), grouped, escalations, rows,
                 open_escalations(session, book.as_of, Scope()))


def _until(session: Session, book: _Book) -> datetime | None:
    """The first moment after the book's at which an escalation or an issue opens or closes, or (off the kept
    latest snapshots) a newer snapshot counts: the book read at its moment holds until then."""
    as_of = book.as_of
    moments: list[Any] = [
        select(func.min(Escalation.opened_at)).where(Escalation.opened_at > as_of).scalar_subquery(),
        select(func.min(Escalation.resolved_at)).where(Escalation.resolved_at > as_of).scalar_subquery(),
        select(func.min(Issue.opened_at)).where(Issue.opened_at > as_of).scalar_subquery(),
        select(func.min(Issue.closed_at)).where(Issue.closed_at > as_of).scalar_subquery(),
    ]
    if book.latest_from is not LatestSnapshot:
        moments.append(select(func.min(ScoreSnapshot.as_of)).where(ScoreSnapshot.as_of > as_of).scalar_subquery())
    found = [moment for moment in session.execute(select(*moments)).one() if moment is not None]
    return min(found) if found else None


def _kept_page(kept: _Kept, filters: Filters, request: PageRequest) -> tuple[list[_Row], int]:
    """The page of the kept book's rows that the filters show, in the order the request names; the total."""
    rows = kept.narrowed(request.sort or SORTS[0], filters.bucket, filters.priority)
    if needle := (filters.q or "").strip().lower():
        rows = [row for row in rows if needle in row.name or needle in row.key]
    end = None if request.limit is None else request.offset + request.limit
    return rows[request.offset : end], len(rows)


def _kept_assessed(
    kept: _Kept, as_of: datetime, matrix: PriorityMatrix, lowest: str | None, rows: list[_Row]
) -> list[AtRiskRow]:
    """The kept rows of a page as `at_risk` assesses them, in their order: the account, its latest snapshot, its
    open escalations and the facts the priority matrix reads (renewal, ARR, open issues) come with the kept book,
    which holds them at `as_of` (its window), so no query."""
    escalated, done = kept.open_escalations, kept.assessed  # (the book holds on one day only: `today` too)
    today = as_of.date().toordinal()
    items = []
    for row in rows:
        if (item := done.get(row.id)) is not None:
            items.append(item)
            continue
        fact = {  # as compute_facts has them: the matrix sums the three kinds of open issue
            "days_to_renewal": row.renewal - today if row.renewal is not None else None,
            "arr": row.arr,
            "open_complaints": row.issues,
        }
        account = (row.id, row.external_id, row.display, row.segment, row.owner)
        risk = assess(account, (row.score, row.bucket), fact, escalated.get(row.id, []), lowest, matrix)
        items.append(item := AtRiskRow(risk, row.arr))
        done[row.id] = item
    return items


def _summary(session: Session, book: _Book, rows: Any, escalations: int | None = None) -> Summary:
    """The figures from the grouped rows (bucket, at-risk priority or None, accounts, scored, ARR at risk), with
    the open reviews past due and the open escalations counted (unless `escalations` brings the count)."""
    overdue = session.scalar(_overdue(book.as_of, book.scope, select(func.count()))) or 0
    if escalations is None:
        escalations = _open_escalations(session, book)
    return _figures(book, rows, overdue, escalations)


def _open_escalations(session: Session, book: _Book) -> int:
    """Escalations open at the book's moment, of the accounts of its scope."""
    return session.scalar(
        select(func.count()).select_from(Escalation).join(Account, Account.id == Escalation.account_id)
        .where(open_at(book.as_of), *book.scope)
    ) or 0


def _figures(book: _Book, rows: Any, overdue: int, escalations: int) -> Summary:
    """The figures from the grouped rows, the overdue reviews and open escalations counted."""
    accounts = scored = flagged = 0
    arr = 0.0
    counts: dict[str, int] = {}
    by_priority: dict[str, int] = {}
    cells: dict[tuple[str | None, str], int] = {}
    for bucket, level, count, with_score, arr_sum in rows:
        accounts, scored = accounts + count, scored + with_score
        if bucket is not None:
            counts[bucket] = counts.get(bucket, 0) + count
        if level is not None:
            flagged += count
            by_priority[level] = by_priority.get(level, 0) + count
            cells[(bucket, level)] = cells.get((bucket, level), 0) + count
            arr += float(arr_sum or 0.0)
    buckets = [BucketCount(b.name, b.below, b.color, counts.pop(b.name, 0)) for b in book.model_buckets]
    buckets += [BucketCount(name, None, "gray", n, in_model=False) for name, n in sorted(counts.items())]
    return Summary(
        as_of=book.as_of,
        model_version=book.model_version,
        accounts=accounts,
        unscored=accounts - scored,
        buckets=buckets,
        at_risk=flagged,
        arr_at_risk=round(arr, 2),
        by_priority={p: by_priority[p] for p in PRIORITIES if p in by_priority},
        overdue_reviews=overdue,
        open_escalations=escalations,
        cells=cells,
    )


def portfolio_view(
    session: Session, as_of: datetime, matrix: PriorityMatrix, filters: Filters, request: PageRequest
) -> tuple[Summary, Page[AtRiskRow]]:
    """`summary` and `at_risk_page` of the same filters with one pass over the accounts: the book (each account
    of the scope with its latest snapshot, flag and priority) is built once in a CTE, and one statement returns
    the grouped figures, the page's rows and the table's total (the `/portfolio` page)."""
    filters.check(session)
    book = _Book(session, as_of, matrix, filters)
    name = request.sort or SORTS[0]
    if name.removeprefix("-") not in SORTS:
        raise InputError(f"--sort {name!r}: choose from {', '.join(n for s in SORTS for n in (s, '-' + s))}")
    if request.offset < 0 or (request.limit is not None and request.limit < 0):
        raise InputError("--limit and --offset cannot be negative")
    kept = _kept_book(session, book, matrix, filters)
    if kept is not None:
        page_rows, matched = _kept_page(kept, filters, request)
        items = _kept_assessed(kept, as_of, matrix, book.lowest, page_rows)
        return _summary(session, book, kept.grouped, kept.escalations), Page(items, matched, request.offset,
                                                                               request.limit)
    # only the columns the sort and the search read: the CTE holds a row per account
    wanted = {"name": Account.name, "renewal_date": Account.renewal_date, "owner_id": Account.owner_id}
    needs = {"name"} if filters.q or name.removeprefix("-") == "name" else set()
    needs |= {"renewal_date"} if name.removeprefix("-") == "renewal" else set()
    needs |= {"owner_id"} if name.removeprefix("-") == "owner" else set()
    cte = book.joined(
        Account.id.label("id"), Account.arr.label("arr"), Account.external_id.label("external_id"),
        book.latest.bucket.label("bucket"), book.latest.score.label("score"), book.flagged.label("flagged"),
        book.priority.label("priority"), *(wanted[column].label(column) for column in sorted(needs)),
    ).cte("book")
    c = cte.c
    owner = aliased(User, name="owner")
    sorts = _sort_clauses(c.priority, c.score, c.name if "name" in needs else null(),
                          c.renewal_date if "renewal_date" in needs else null(),
                          owner.name if "owner_id" in needs else null(), c.arr, c.external_id)
    shown: list[Any] = [c.flagged]
    if filters.bucket:
        shown.append(c.bucket == filters.bucket)
    if filters.priority:
        shown.append(c.priority == filters.priority)
    if needle := (filters.q or "").strip().lower():
        shown.append(or_(func.lower(c.name).contains(needle, autoescape=True),
                         func.lower(c.external_id).contains(needle, autoescape=True)))
    level = case((c.flagged, c.priority), else_=None)
    text, number, real = String(), BigInteger(), Float()
    figures = select(
        literal("figures", text), c.bucket, level, func.count(), func.count(c.score),
        func.sum(case((c.flagged, c.arr), else_=None)).cast(real),
    ).group_by(c.bucket, level)
    total = select(
        literal("total", text), null().cast(text), null().cast(text), func.count(), null().cast(number),
        null().cast(real),
    ).where(*shown)
    extra = [c.name] if "name" in needs else []
    extra += [c.renewal_date] if "renewal_date" in needs else []
    extra += [owner.name.label("owner_name")] if "owner_id" in needs else []
    page = select(c.id, c.arr, c.priority, c.score, c.external_id, *extra).select_from(cte).where(*shown)
    if "owner_id" in needs:
        page = page.outerjoin(owner, owner.id == c.owner_id)
    page = page.order_by(*sorts[name]).offset(request.offset or None)
    if request.limit is not None:
        page = page.limit(request.limit)
    # the page's order numbered over its own rows (a window over the whole table would sort all of it)
    cut = page.subquery("page")
    again = _sort_clauses(cut.c.priority, cut.c.score, cut.c.name if "name" in needs else null(),
                          cut.c.renewal_date if "renewal_date" in needs else null(),
                          cut.c.owner_name if "owner_id" in needs else null(), cut.c.arr, cut.c.external_id)
    rows_of = select(cut.c.id, cut.c.arr, func.row_number().over(order_by=again[name]).label("n")).subquery("rows")
    rows = select(
        literal("row", text), null().cast(text), null().cast(text), rows_of.c.id, rows_of.c.n, rows_of.c.arr,
    )
    grouped, counted, found_rows = [], 0, []
    for kind, bucket, at_risk_level, first, second, amount in session.execute(union_all(figures, total, rows)):
        if kind == "figures":
            grouped.append((bucket, at_risk_level, first, second, amount))
        elif kind == "total":
            counted = first
        else:
            found_rows.append((second, first, amount))
    found_rows.sort()
    ids = [account_id for _, account_id, _ in found_rows]
    assessed = {item.account_id: item for item in at_risk(session, as_of, matrix, account_ids=ids)} if ids else {}
    items = [AtRiskRow(assessed[account_id], arr) for _, account_id, arr in found_rows if account_id in assessed]
    return _summary(session, book, grouped), Page(items, counted, request.offset, request.limit)


def at_risk_page(
    session: Session, as_of: datetime, matrix: PriorityMatrix, filters: Filters, request: PageRequest,
    figures: Summary | None = None,
) -> Page[AtRiskRow]:
    """One page of the accounts at risk, filtered, searched and sorted in SQL (default: most urgent first, as the
    report orders them); each row of the page assessed as `at_risk` assesses it (reasons, priority). With the
    `figures` of the same filters, the total comes from their counts (no second pass) unless a search narrows."""
    filters.check(session)
    book = _Book(session, as_of, matrix, filters)
    kept = _kept_book(session, book, matrix, filters)
    if kept is not None:
        sorts = _sorts(book)  # fetch_page's checks, in its words
        if (request.sort or next(iter(sorts))) not in sorts:
            raise InputError(f"--sort {request.sort!r}: choose from {', '.join(sorts)}")
        if request.offset < 0 or (request.limit is not None and request.limit < 0):
            raise InputError("--limit and --offset cannot be negative")
        page_rows, matched = _kept_page(kept, filters, request)
        items = _kept_assessed(kept, as_of, matrix, book.lowest, page_rows)
        return Page(items, matched, request.offset, request.limit)
    query = (
        book.joined(Account.id, Account.arr)
        .outerjoin(book.owner, book.owner.id == Account.owner_id)
        .where(book.flagged)
    )
    if filters.bucket:
        query = query.where(book.latest.bucket == filters.bucket)
    if filters.priority:
        query = query.where(book.priority == filters.priority)
    if needle := (filters.q or "").strip().lower():
        query = query.where(
            or_(
                func.lower(Account.name).contains(needle, autoescape=True),
                func.lower(Account.external_id).contains(needle, autoescape=True),
            )
        )
    total = None if figures is None or filters.q else figures.at_risk_total(filters.bucket, filters.priority)
    rows = fetch_page(session, query, request, _sorts(book), scalars=False, total=total)
    ids = [account_id for account_id, _ in rows.items]
    found = {item.account_id: item for item in at_risk(session, as_of, matrix, account_ids=ids)} if ids else {}
    items = [AtRiskRow(found[account_id], arr) for account_id, arr in rows.items if account_id in found]
    return Page(items, rows.total, rows.offset, rows.limit)


def _sorts(book: _Book) -> dict[str, tuple[Any, ...]]:
    """Each sort name, and "-name" for the other way round, -> ORDER BY clauses over the book's columns."""
    return _sort_clauses(book.priority, book.latest.score, Account.name, Account.renewal_date, book.owner.name,
                         Account.arr, Account.external_id)


def _sort_clauses(
    priority: Any, score: Any, name: Any, renewal: Any, owner: Any, arr: Any, key: Any
) -> dict[str, tuple[Any, ...]]:
    """Each sort name, and "-name" for the other way round, -> ORDER BY clauses; rows without a value (no score,
    no renewal date, no owner) last either way, the external id `key` last to keep pages apart."""
    columns: dict[str, list[tuple[Any, bool]]] = {  # (column, descending by default)
        "urgency": [(priority, False), (score, False)],
        "name": [(func.lower(name), False)],
        "score": [(score, False)],
        "priority": [(priority, False), (score, False)],
        "renewal": [(renewal, False)],
        "owner": [(owner, False)],
        "arr": [(arr, True)],
    }
    sorts: dict[str, tuple[Any, ...]] = {}
    for sort_name, parts in columns.items():
        for reverse in (False, True):
            clauses: list[Any] = []
            for part, descending in parts:
                clauses += [part.is_(None), part.desc() if descending != reverse else part]
            sorts[("-" if reverse else "") + sort_name] = (*clauses, key.desc() if reverse else key)
    return sorts


def overdue_page(
    session: Session, as_of: datetime, filters: Filters, request: PageRequest, total: int | None = None,
    checked: bool = False,
) -> Page[dict[str, Any]]:
    """Draft or submitted reviews past their due date at `as_of` (of the segment and owner scope), most overdue
    first; `total`: their number when the caller counted them already (the summary's overdue reviews);
    `checked`: the caller checked the filters in the same transaction already (no second look-up)."""
    if not checked:
        filters.check(session)
    columns = (Review.id, Account.external_id, Account.name, Review.reviewer, Review.due_at)
    query = _overdue(as_of, _scope(filters), select(*columns))
    page = fetch_page(session, query, request, {"due": (Review.due_at, Review.id)}, scalars=False, total=total)
    return page.map(
        lambda row: {"id": row[0], "account": row[1], "name": row[2], "reviewer": row[3],
                     "due_at": row[4].isoformat(), "days_overdue": (as_of - row[4]).days}
    )


def _latest(session: Session, as_of: datetime) -> tuple[Any, Any, Any]:
    """The latest snapshot on or before `as_of` of each account: what to join, its columns, the ON clause.

    When no snapshot is newer than `as_of` (the live page, now), the one `latest_snapshots` keeps (migration
    0021's triggers). Else, on PostgreSQL: DISTINCT ON, one index-only pass over ix_score_snapshots_latest whose
    size the planner knows (a GROUP BY MAX joined back made it guess a few rows and nest loops over 100k x 100k
    accounts: minutes; a sort of the wide rows took seconds); elsewhere (SQLite): a correlated MAX per account
    through the same index."""
    newest = session.scalar(select(func.max(ScoreSnapshot.as_of)))
    if newest is None or newest <= as_of:
        return LatestSnapshot, LatestSnapshot, LatestSnapshot.account_id == Account.id
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import distinct_on

        latest = (
            select(ScoreSnapshot.account_id, ScoreSnapshot.score, ScoreSnapshot.bucket)
            .where(ScoreSnapshot.as_of <= as_of)
            .ext(distinct_on(ScoreSnapshot.account_id))
            .order_by(ScoreSnapshot.account_id.desc(), ScoreSnapshot.as_of.desc())  # ix_score_snapshots_latest backward
            .subquery("latest")
        )
        return latest, latest.c, latest.c.account_id == Account.id
    newer = aliased(ScoreSnapshot)
    newest = (
        select(func.max(newer.as_of))
        .where(newer.account_id == Account.id, newer.as_of <= as_of)
        .correlate(Account)
        .scalar_subquery()
    )
    snapshot = aliased(ScoreSnapshot, name="latest")
    return snapshot, snapshot, and_(snapshot.account_id == Account.id, snapshot.as_of == newest)


def _scope(filters: Filters) -> list[Any]:
    """The WHERE clauses on Account of the segment and owner filters."""
    scope: list[Any] = []
    if filters.segment:
        scope.append(Account.segment == filters.segment)
    if filters.owner:
        scope.append(Account.owner_id == select(User.id).where(User.name == filters.owner).scalar_subquery())
    return scope


def _overdue(as_of: datetime, scope: list[Any], query: Any) -> Any:
    """`query` over the reviews still open past their due date at `as_of`, of the accounts `scope` keeps."""
    return (
        query.select_from(Review)
        .join(Account, Account.id == Review.account_id)
        .where(Review.state.in_(OPEN_REVIEW_STATES), Review.due_at < as_of, Review.created_at <= as_of)
        .where(*scope)
    )
