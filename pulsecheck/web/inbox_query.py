"""A stand-in for the inbox service: the acting user's drafts, approvals waiting, owned escalations and due
actions. `pulsecheck/workflow/inbox.py` (written in parallel) replaces `my_plate` at merge; only this module and
`nav.py` call it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from pulsecheck.storage.models import Escalation, MitigationAction, Review, ReviewCycle, User


@dataclass
class Plate:
    """What is waiting for one user."""

    drafts: list[Review] = field(default_factory=list)
    approvals: list[Review] = field(default_factory=list)
    escalations: list[Escalation] = field(default_factory=list)
    actions: list[tuple[MitigationAction, Review]] = field(default_factory=list)
    cycles: list[ReviewCycle] = field(default_factory=list)  # my drafts to work; submitted ones for a manager

    def counts(self) -> dict[str, int]:
        return {"drafts": len(self.drafts), "approvals": len(self.approvals), "escalations": len(self.escalations),
                "actions": len(self.actions)}


def my_plate(session: Session, user: str, now: datetime) -> Plate:
    """The user's drafts to fill, reviews waiting for their approval, open escalations they own, and open
    mitigation actions they own that are due (by today) on reviews not closed."""
    drafts = session.scalars(
        select(Review).options(joinedload(Review.account))
        .where(Review.reviewer == user, Review.state == "draft").order_by(Review.due_at)
    ).all()
    approvals = session.scalars(
        select(Review).options(joinedload(Review.account))
        .where(Review.approver == user, Review.state == "submitted").order_by(Review.due_at)
    ).all()
    escalations = session.scalars(
        select(Escalation).options(joinedload(Escalation.account))
        .where(Escalation.owner == user, Escalation.status == "open")
        .order_by(Escalation.priority, Escalation.opened_at)
    ).all()
    actions = session.execute(
        select(MitigationAction, Review).join(Review, Review.id == MitigationAction.review_id)
        .options(joinedload(Review.account))
        .where(MitigationAction.owner == user, MitigationAction.status.in_(("open", "in_progress")),
               MitigationAction.due_date <= now.date(), Review.state != "closed")
        .order_by(MitigationAction.due_date)
    ).all()
    return Plate(list(drafts), list(approvals), list(escalations), [(a, r) for a, r in actions],
                 _cycles(session, user))


def _cycles(session: Session, user: str) -> list[ReviewCycle]:
    """Cycles I own that are drafts, and, for a manager, submitted cycles of others waiting for approval."""
    roles = session.scalar(select(User.roles).where(User.name == user)) or ""
    mine = (ReviewCycle.owner == user) & (ReviewCycle.state == "draft")
    if "manager" in roles.split(","):
        mine = mine | ((ReviewCycle.state == "submitted") & (ReviewCycle.owner != user))
    return list(session.scalars(select(ReviewCycle).where(mine).order_by(ReviewCycle.id)))


def plate_counts(session: Session, user: str, now: datetime) -> dict[str, Any]:
    """The nav's counts, without loading the rows."""
    def count(query: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)

    return {
        "drafts": count(select(Review.id).where(Review.reviewer == user, Review.state == "draft")),
        "approvals": count(select(Review.id).where(Review.approver == user, Review.state == "submitted")),
        "escalations": count(select(Escalation.id).where(Escalation.owner == user, Escalation.status == "open")),
    }
