"""A person's inbox: what waits for them today, section by section (drafts to fill, reviews to approve,
escalations to acknowledge, mitigation actions due, cycle steps and findings). Plain data for the CLI and the
web app; each section is one page cut in SQL with its total. Read on SQLAlchemy Core: `inbox` imports no ORM (issue
17); the web app passes a session (`Session.execute` runs a Core statement as a connection does)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Date, Integer, String, bindparam, exists, func, select

from pulsecheck.states.cycle import STEPS
from pulsecheck.storage.more_tables import CYCLE_FINDINGS, CYCLE_STEPS, ESCALATIONS, REVIEW_CYCLES
from pulsecheck.storage.paging import Page
from pulsecheck.storage.tables import ACCOUNTS, MITIGATION_ACTIONS, REVIEWS
from pulsecheck.timeutil import iso

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

OPEN_ACTION_STATUSES = ("open", "in_progress")
_ACCOUNT, _REVIEW, _ESCALATION, _ACTION = ACCOUNTS.c, REVIEWS.c, ESCALATIONS.c, MITIGATION_ACTIONS.c
_CYCLE, _STEP, _FINDING = REVIEW_CYCLES.c, CYCLE_STEPS.c, CYCLE_FINDINGS.c


@dataclass(frozen=True)
class InboxSection:
    """One kind of work: a stable key, a heading, what the person does about it, and the first rows."""

    key: str
    title: str
    todo: str
    page: Page[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "todo": self.todo, **self.page.to_dict()}


@dataclass(frozen=True)
class Inbox:
    """Everything waiting for `user` as of `now`; `total` counts all rows of all sections."""

    user: str
    as_of: datetime
    sections: list[InboxSection]

    @property
    def total(self) -> int:
        return sum(section.page.total for section in self.sections)

    def to_dict(self) -> dict[str, Any]:
        """The `inbox --json` shape (and the web API's)."""
        return {
            "user": self.user,
            "as_of": iso(self.as_of),
            "total": self.total,
            "counts": {s.key: s.page.total for s in self.sections},
            "sections": [s.to_dict() for s in self.sections],
        }


def inbox(
    db: Session | Connection, user: str, now: datetime, today: date, *, limit: int = 10, horizon_days: int = 7
) -> Inbox:
    """What waits for `user`: each section holds its first `limit` rows (most urgent first) and its total;
    mitigation actions count when due within `horizon_days` of `today` (the business day) or overdue. The totals
    come from one query; only the sections with rows are then read, each in one query."""
    params = _params(user, today, horizon_days)
    totals = _totals(db, params)
    sections = []
    for key, title, todo in SECTIONS:
        if totals[key] and limit != 0:
            convert = SECTION_QUERIES[key][2]
            rows = db.execute(PAGES[key], params | {"limit": limit})
            page = Page([convert(row, today) for row in rows], totals[key], 0, limit)
        else:
            page = Page([], totals[key], 0, limit)
        if key == "cycle_steps" and page.items:
            page = _with_next_steps(db, page)
        sections.append(InboxSection(key, title, todo, page))
    return Inbox(user, now, sections)


def inbox_counts(db: Session | Connection, user: str, today: date, horizon_days: int = 7) -> dict[str, int]:
    """Each section's total for `user` (the inbox's), and their sum as `total`, in one query."""
    counts = _totals(db, _params(user, today, horizon_days))
    return counts | {"total": sum(counts.values())}


# Each section: its key, heading and what the person does about it, in the order shown.
SECTIONS = (
    ("drafts", "Drafts to fill", "fill and submit"),
    ("approvals", "Reviews to approve", "approve or reject"),
    ("escalations", "Escalations to acknowledge", "ack"),
    ("actions", "Mitigation actions due", "do, then mark done"),
    ("cycle_steps", "Cycle work waiting", "next step, submit or approve"),
    ("findings", "Cycle findings to close", "correct, then close"),
)
# query (filters, no order, parameters :user and :until), its order, how a row reads (given the business day)
Section = tuple[Any, tuple[Any, ...], Callable[[Any, date], dict[str, Any]]]
USER = bindparam("user", type_=String)
UNTIL = bindparam("until", type_=Date)  # mitigation actions due by then count


def _params(user: str, today: date, horizon_days: int) -> dict[str, Any]:
    return {"user": user, "until": today + timedelta(days=horizon_days)}


def _reviews(state: str, role: Any) -> Section:
    query = (
        select(
            _REVIEW.id, _ACCOUNT.external_id, _ACCOUNT.name, _REVIEW.priority, _REVIEW.due_at, _REVIEW.kind,
            _REVIEW.reviewer,
        )
        .join(ACCOUNTS, _ACCOUNT.id == _REVIEW.account_id)
        .where(_REVIEW.state == state, role == USER)
    )
    return query, (_REVIEW.due_at, _REVIEW.id), lambda r, _today: {
        "review": r.id, "account": r.external_id, "account_name": r.name, "priority": r.priority,
        "due_at": iso(r.due_at), "kind": r.kind, "reviewer": r.reviewer,
    }


def _escalations() -> Section:
    query = (
        select(
            _ESCALATION.id, _ACCOUNT.external_id, _ESCALATION.rule_id, _ESCALATION.priority, _ESCALATION.severity,
            _ESCALATION.level, _ESCALATION.due_at, _ESCALATION.opened_at, _ESCALATION.reason,
        )
        .join(ACCOUNTS, _ACCOUNT.id == _ESCALATION.account_id)
        .where(_ESCALATION.status == "open", _ESCALATION.owner == USER)
    )
    return query, (_ESCALATION.priority, _ESCALATION.due_at, _ESCALATION.id), lambda e, _today: {
        "escalation": e.id, "account": e.external_id, "rule": e.rule_id, "priority": e.priority,
        "severity": e.severity, "level": e.level, "due_at": iso(e.due_at), "opened_at": iso(e.opened_at),
        "reason": e.reason,
    }


def _actions() -> Section:
    query = (
        select(
            _ACTION.review_id, _ACTION.number, _ACTION.description, _ACTION.due_date, _ACTION.status,
            _ACCOUNT.external_id,
        )
        .join(REVIEWS, _REVIEW.id == _ACTION.review_id)
        .join(ACCOUNTS, _ACCOUNT.id == _REVIEW.account_id)
        .where(
            _ACTION.owner == USER,
            _ACTION.status.in_(OPEN_ACTION_STATUSES),
            _ACTION.due_date <= UNTIL,
            _REVIEW.state != "closed",
        )
    )
    order = (_ACTION.due_date, _ACTION.review_id, _ACTION.number)
    return query, order, lambda a, today: {
        "review": a.review_id, "action": a.number, "account": a.external_id, "description": a.description,
        "due_date": a.due_date.isoformat(), "status": a.status, "overdue": a.due_date < today,
    }


def _cycles() -> Section:
    """Draft cycles the person owns (their next step, or submit) and submitted ones they approve."""
    done = select(func.count()).where(_STEP.cycle_id == _CYCLE.id).scalar_subquery()
    query = select(_CYCLE.id, _CYCLE.period, _CYCLE.state, done.label("done")).where(
        ((_CYCLE.state == "draft") & (_CYCLE.owner == USER))
        | ((_CYCLE.state == "submitted") & (_CYCLE.approver == USER))
    )
    return query, (_CYCLE.id,), lambda c, _today: {
        "cycle": c.id, "period": c.period, "state": c.state, "steps_done": c.done, "next": None,
    }


def _done_steps(db: Session | Connection, cycle_ids: list[int]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    if cycle_ids:
        for cycle_id, step in db.execute(select(_STEP.cycle_id, _STEP.step).where(_STEP.cycle_id.in_(cycle_ids))):
            found.setdefault(cycle_id, set()).add(step)
    return found


def _with_next_steps(db: Session | Connection, rows: Page[dict[str, Any]]) -> Page[dict[str, Any]]:
    """The cycle rows with what each waits for (its done steps read in one query)."""
    steps = _done_steps(db, [c["cycle"] for c in rows.items if c["state"] == "draft"])
    return rows.map(lambda c: c | {"next": _next_step(c["state"], steps.get(c["cycle"], set()))})


def _next_step(state: str, done: set[str]) -> str:
    """What a cycle waits for: approval when submitted, else its first step not done (then submit)."""
    if state == "submitted":
        return "approve"
    return next((step for step in STEPS if step not in done), "submit")


def _findings() -> Section:
    # A finding carried into a later cycle lives on there: count the newest copy only.
    later = CYCLE_FINDINGS.alias()
    carried = exists().where(later.c.carried_from == _FINDING.id)
    query = select(_FINDING.id, _FINDING.cycle_id, _FINDING.kind, _FINDING.detail, _FINDING.due).where(
        _FINDING.owner == USER, _FINDING.status == "open", ~carried
    )
    order = (_FINDING.due.is_(None), _FINDING.due, _FINDING.id)
    return query, order, lambda f, today: {
        "finding": f.id, "cycle": f.cycle_id, "kind": f.kind, "detail": f.detail,
        "due": f.due.isoformat() if f.due else None, "overdue": bool(f.due and f.due < today),
    }


# Each section's statements are built once, with the user and the horizon as parameters: building them (an
# aliased table, a correlated count) cost more Python than running them, and every page's navigation counts.
SECTION_QUERIES: dict[str, Section] = {
    "drafts": _reviews("draft", _REVIEW.reviewer),
    "approvals": _reviews("submitted", _REVIEW.approver),
    "escalations": _escalations(),
    "actions": _actions(),
    "cycle_steps": _cycles(),
    "findings": _findings(),
}

# The sections whose rows are many (a reviewer's drafts, a manager's escalations): counted and cut into a page over
# their own table (by id), then only the page's rows joined with their accounts (a join first read every account).
KEYED: dict[str, Any] = {"drafts": REVIEWS, "approvals": REVIEWS, "escalations": ESCALATIONS}


def _keys(key: str, query: Any) -> Any:
    """`query`'s filters (on its own table's columns) over that table alone: the section's join with accounts (a
    non-null foreign key) only adds columns."""
    return select(KEYED[key].c.id).where(query.whereclause)


def _count_statement() -> Any:
    """The number of rows of each section, all counted in one SELECT."""
    counts = [
        select(func.count()).select_from(
            (_keys(key, query) if key in KEYED else query).subquery()
        ).scalar_subquery().label(key)
        for key, (query, _order, _convert) in SECTION_QUERIES.items()
    ]
    return select(*counts)


TOTALS = _count_statement()


def _totals(db: Session | Connection, params: dict[str, Any]) -> dict[str, int]:
    row = db.execute(TOTALS, params).one()
    return {key: int(row[n] or 0) for n, key in enumerate(SECTION_QUERIES)}


def _page_of(key: str) -> Any:
    """The statement of a section's first :limit rows in its order. A keyed section cuts the page over its own
    table in a subquery, then joins only those rows with their accounts."""
    query, order, _convert = SECTION_QUERIES[key]
    limit = bindparam("limit", type_=Integer)
    if key not in KEYED:
        return query.order_by(*order).limit(limit)
    table = KEYED[key]
    keys = _keys(key, query).order_by(*order).limit(limit).subquery()
    return (
        select(*query.selected_columns)
        .select_from(keys)
        .join(table, table.c.id == keys.c.id)
        .join(ACCOUNTS, _ACCOUNT.id == table.c.account_id)
        .order_by(*order)
    )


PAGES = {key: _page_of(key) for key in SECTION_QUERIES}


