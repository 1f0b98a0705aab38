"""A person's inbox: what waits for them today, section by section (drafts to fill, reviews to approve,
escalations to acknowledge, mitigation actions due, cycle steps and findings). Plain data for the CLI and the
web app; each section is one page cut in SQL with its total."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from pulsecheck.states.cycle import STEPS
from pulsecheck.storage.models import (
    Account,
    CycleFinding,
    CycleStep,
    Escalation,
    MitigationAction,
    Review,
    ReviewCycle,
)
from pulsecheck.storage.paging import Page, PageRequest, fetch_page
from pulsecheck.timeutil import iso

OPEN_ACTION_STATUSES = ("open", "in_progress")


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
    session: Session, user: str, now: datetime, today: date, *, limit: int = 10, horizon_days: int = 7
) -> Inbox:
    """What waits for `user`: each section holds its first `limit` rows (most urgent first) and its total;
    mitigation actions count when due within `horizon_days` of `today` (the business day) or overdue."""
    page = PageRequest(limit=limit)
    drafts = _reviews(session, "draft", Review.reviewer, user, page)
    approvals = _reviews(session, "submitted", Review.approver, user, page)
    sections = [
        InboxSection("drafts", "Drafts to fill", "fill and submit", drafts),
        InboxSection("approvals", "Reviews to approve", "approve or reject", approvals),
        InboxSection("escalations", "Escalations to acknowledge", "ack", _escalations(session, user, now, page)),
        InboxSection(
            "actions", "Mitigation actions due", "do, then mark done",
            _actions(session, user, today + timedelta(days=horizon_days), today, page),
        ),
        InboxSection("cycle_steps", "Cycle work waiting", "next step, submit or approve", _cycles(session, user, page)),
        InboxSection("findings", "Cycle findings to close", "correct, then close",
                     _findings(session, user, today, page)),
    ]
    return Inbox(user, now, sections)


def _reviews(session: Session, state: str, role: Any, user: str, request: PageRequest) -> Page[dict[str, Any]]:
    query = (
        select(
            Review.id, Account.external_id, Account.name, Review.priority, Review.due_at, Review.kind,
            Review.reviewer,
        )
        .join(Account, Account.id == Review.account_id)
        .where(Review.state == state, role == user)
    )
    page = fetch_page(session, query, request, {"due": (Review.due_at, Review.id)}, scalars=False)
    return page.map(
        lambda r: {
            "review": r.id, "account": r.external_id, "account_name": r.name, "priority": r.priority,
            "due_at": iso(r.due_at), "kind": r.kind, "reviewer": r.reviewer,
        }
    )


def _escalations(session: Session, user: str, now: datetime, request: PageRequest) -> Page[dict[str, Any]]:
    query = (
        select(
            Escalation.id, Account.external_id, Escalation.rule_id, Escalation.priority, Escalation.severity,
            Escalation.level, Escalation.due_at, Escalation.opened_at, Escalation.reason,
        )
        .join(Account, Account.id == Escalation.account_id)
        .where(Escalation.status == "open", Escalation.owner == user)
    )
    sorts = {"priority": (Escalation.priority, Escalation.due_at, Escalation.id)}
    return fetch_page(session, query, request, sorts, scalars=False).map(
        lambda e: {
            "escalation": e.id, "account": e.external_id, "rule": e.rule_id, "priority": e.priority,
            "severity": e.severity, "level": e.level, "due_at": iso(e.due_at), "opened_at": iso(e.opened_at),
            "reason": e.reason,
        }
    )


def _actions(session: Session, user: str, until: date, today: date, request: PageRequest) -> Page[dict[str, Any]]:
    query = (
        select(
            MitigationAction.review_id, MitigationAction.number, MitigationAction.description,
            MitigationAction.due_date, MitigationAction.status, Account.external_id,
        )
        .join(Review, Review.id == MitigationAction.review_id)
        .join(Account, Account.id == Review.account_id)
        .where(
            MitigationAction.owner == user,
            MitigationAction.status.in_(OPEN_ACTION_STATUSES),
            MitigationAction.due_date <= until,
            Review.state != "closed",
        )
    )
    sorts = {"due": (MitigationAction.due_date, MitigationAction.review_id, MitigationAction.number)}
    return fetch_page(session, query, request, sorts, scalars=False).map(
        lambda a: {
            "review": a.review_id, "action": a.number, "account": a.external_id, "description": a.description,
            "due_date": a.due_date.isoformat(), "status": a.status, "overdue": a.due_date < today,
        }
    )


def _cycles(session: Session, user: str, request: PageRequest) -> Page[dict[str, Any]]:
    """Draft cycles the person owns (their next step, or submit) and submitted ones they approve."""
    done = select(func.count()).where(CycleStep.cycle_id == ReviewCycle.id).scalar_subquery()
    query = select(ReviewCycle.id, ReviewCycle.period, ReviewCycle.state, done.label("done")).where(
        ((ReviewCycle.state == "draft") & (ReviewCycle.owner == user))
        | ((ReviewCycle.state == "submitted") & (ReviewCycle.approver == user))
    )
    page = fetch_page(session, query, request, {"id": (ReviewCycle.id,)}, scalars=False)
    steps = _done_steps(session, [c.id for c in page.items if c.state == "draft"])
    return page.map(lambda c: _cycle_row(c, steps.get(c.id, set())))


def _done_steps(session: Session, cycle_ids: list[int]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    if cycle_ids:
        for cycle_id, step in session.execute(
            select(CycleStep.cycle_id, CycleStep.step).where(CycleStep.cycle_id.in_(cycle_ids))
        ):
            found.setdefault(cycle_id, set()).add(step)
    return found


def _cycle_row(row: Any, done: set[str]) -> dict[str, Any]:
    if row.state == "submitted":
        waiting = "approve"
    else:
        waiting = next((step for step in STEPS if step not in done), "submit")
    return {"cycle": row.id, "period": row.period, "state": row.state, "steps_done": row.done, "next": waiting}


def _findings(session: Session, user: str, today: date, request: PageRequest) -> Page[dict[str, Any]]:
    # A finding carried into a later cycle lives on there: count the newest copy only.
    later = aliased(CycleFinding)
    carried = exists().where(later.carried_from == CycleFinding.id)
    query = select(CycleFinding).where(CycleFinding.owner == user, CycleFinding.status == "open", ~carried)
    sorts = {"due": (CycleFinding.due.is_(None), CycleFinding.due, CycleFinding.id)}
    return fetch_page(session, query, request, sorts).map(
        lambda f: {
            "finding": f.id, "cycle": f.cycle_id, "kind": f.kind, "detail": f.detail,
            "due": f.due.isoformat() if f.due else None, "overdue": bool(f.due and f.due < today),
        }
    )
