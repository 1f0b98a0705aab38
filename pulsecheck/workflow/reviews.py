"""Review services: open, fill, move through the state machine, audit, sign and verify."""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError, NotFoundError, RefusedError
from pulsecheck.states import review as machine
from pulsecheck.states.review import SETTABLE, TEXT_FIELDS
from pulsecheck.storage.models import (
    Account,
    MitigationAction,
    Review,
    ReviewEvent,
    Risk,
    ScoreSnapshot,
    User,
)
from pulsecheck.timeutil import end_of_day
from pulsecheck.vocab import PRIORITIES
from pulsecheck.workflow.accounts import get_account
from pulsecheck.workflow.users import get_user

if TYPE_CHECKING:
    from pulsecheck.workflow.review_form import ReviewForm

SYSTEM_ACTOR = "pulsecheck"


def get_review(session: Session, review_id: int) -> Review:
    """A review by id, or an input error."""
    review = session.get(Review, review_id)
    if review is None:
        raise NotFoundError(f"unknown review {review_id}")
    return review


def open_review_for(session: Session, account_id: int) -> Review | None:
    """The account's review that is not closed yet, if any."""
    return session.scalar(
        select(Review)
        .where(Review.account_id == account_id, Review.state != "closed")
        .order_by(Review.id.desc())
        .limit(1)
    )


def new_review(
    session: Session,
    account_ref: str,
    actor: str,
    now: datetime,
    due_in: timedelta,
    reviewer: str | None = None,
    approver: str | None = None,
    due: datetime | None = None,
    kind: str = "cadence",
    priority: str = "P3",
    cause: str = "user",
) -> Review:
    """Open a draft review of an account; the baseline score comes from its latest snapshot."""
    account = get_account(session, account_ref)
    existing = open_review_for(session, account.id)
    if existing is not None:
        raise RefusedError(f"account {account.external_id} already has review {existing.id} ({existing.state})")
    reviewer_name = reviewer or (account.owner.name if account.owner else None) or actor
    reviewer_user = get_user(session, reviewer_name, what="--reviewer")
    approver_name = approver or reviewer_user.manager_name or (account.manager.name if account.manager else None)
    if approver_name is not None:
        if not get_user(session, approver_name, what="--approver").role_set & machine.MANAGER_ROLES:
            raise InputError(f"--approver: {approver_name} does not have the manager role")
        if approver_name == reviewer_name:
            raise InputError(f"--approver: {approver_name} is also the reviewer (four-eyes)")
    if due is not None and due <= now:
        raise InputError(f"--due {due.date()}: must be in the future")
    if priority not in PRIORITIES:
        raise InputError(f"priority {priority!r}: choose from {', '.join(PRIORITIES)}")
    snapshot = session.scalar(
        select(ScoreSnapshot)
        .where(ScoreSnapshot.account_id == account.id)
        .order_by(ScoreSnapshot.as_of.desc())
        .limit(1)
    )
    review = Review(
        account=account,
        state=machine.NEW,
        kind=kind,
        reviewer=reviewer_name,
        approver=approver_name,
        priority=priority,
        due_at=due or now + due_in,
        created_at=now,
        updated_at=now,
        baseline_score=snapshot.score if snapshot else None,
        baseline_bucket=snapshot.bucket if snapshot else None,
    )
    session.add(review)
    _apply(session, review, "open", actor, now, roles=frozenset(), cause=cause)
    return review


def content_of(review: Review) -> machine.ReviewContent:
    """The plain-data template of a review, as signatures and guards see it."""
    return machine.ReviewContent(
        account=review.account.external_id,
        reviewer=review.reviewer,
        approver=review.approver,
        account_goals=review.account_goals,
        goal_summary=review.goal_summary,
        overall_assessment=review.overall_assessment,
        next_review_date=review.next_review_date,
        employee_comments=review.employee_comments,
        manager_comments=review.manager_comments,
        risks=tuple(
            machine.RiskData(r.number, r.description, r.evidence, r.category, r.severity, r.impact)
            for r in review.risks
        ),
        actions=tuple(
            machine.ActionData(
                a.number, a.description, a.risk_number, a.owner, a.due_date, a.success_criteria, a.status
            )
            for a in review.actions
        ),
    )


def _apply(
    session: Session,
    review: Review,
    event: str,
    actor: str,
    now: datetime,
    roles: frozenset[str],
    comment: str | None = None,
    cause: str = "user",
) -> None:
    ctx = machine.Context(
        content=content_of(review),
        actor=actor,
        actor_roles=roles,
        now=now,
        comment=comment,
        cause=cause,
        employee_digest=review.employee_digest,
    )
    before = review.state
    after = machine.fire(before, event, ctx)
    if review.id is None:
        session.flush()  # the audit row needs the review's id
    review.state = after
    review.updated_at = now
    if event == "submit":
        review.employee_signed_by, review.employee_signed_at = actor, now
        review.employee_digest = machine.employee_digest(ctx.content)
    elif event == "approve":
        review.manager_signed_by, review.manager_signed_at = actor, now
        review.manager_digest = machine.manager_digest(ctx.content)
    elif event in ("reject", "reopen"):
        _clear_signatures(review)
    if before != after or event == "escalate":
        review.reminders_sent = 0
    session.add(
        ReviewEvent(
            review_id=review.id,
            event=event,
            from_state=None if before == machine.NEW else before,
            to_state=after,
            actor=actor,
            comment=comment,
            at=now,
            cause=cause,
        )
    )
    session.flush()


def _clear_signatures(review: Review) -> None:
    review.employee_signed_by = review.employee_signed_at = review.employee_digest = None
    review.manager_signed_by = review.manager_signed_at = review.manager_digest = None


def transition(
    session: Session,
    review_id: int,
    event: str,
    actor: User | str,
    now: datetime,
    comment: str | None = None,
    cause: str = "user",
) -> Review:
    """Fire `event` on a review as `actor`; refused events raise with the guard's reason."""
    review = get_review(session, review_id)
    name, roles = (actor, frozenset()) if isinstance(actor, str) else (actor.name, frozenset(actor.role_set))
    if event == "approve" and comment and not (review.manager_comments or "").strip():
        review.manager_comments = comment  # `approve --comment` fills the manager's comments
    _apply(session, review, event, name, now, roles, comment, cause)
    return review


def escalate(
    session: Session,
    review: Review,
    now: datetime,
    priority: str,
    due_at: datetime | None,
    cause: str,
    comment: str,
) -> None:
    """Raise a review's priority and pull its due date in (never push it out)."""
    if PRIORITIES.index(priority) < PRIORITIES.index(review.priority):
        review.priority = priority
    if due_at is not None and (review.due_at is None or due_at < review.due_at):
        review.due_at = due_at
    _apply(session, review, "escalate", SYSTEM_ACTOR, now, frozenset(), comment, cause)


# --- editing ------------------------------------------------------------------------------------


def _editable(review: Review, user: User, fields: list[str]) -> None:
    if review.state not in machine.EDITABLE_STATES:
        raise RefusedError(f"review {review.id} is {review.state} and read-only")
    is_manager = bool(user.role_set & machine.MANAGER_ROLES)
    for field in fields:
        if field in ("manager_comments", "priority", "due_at", "reviewer", "approver") and not is_manager:
            raise RefusedError(f"only a manager can change {field}")
        if field not in ("manager_comments",) and not (is_manager or user.name == review.reviewer):
            raise RefusedError(f"{user.name} is not the reviewer ({review.reviewer}) of review {review.id}")


def _touch(session: Session, review: Review, user: User, now: datetime, fields: list[str]) -> None:
    review.updated_at = now
    if review.employee_digest or review.manager_digest:
        session.add(
            ReviewEvent(
                review_id=review.id,
                event="edit",
                from_state=review.state,
                to_state=review.state,
                actor=user.name,
                comment="changed after signing: " + ", ".join(fields),
                at=now,
                cause="user",
            )
        )
    session.flush()


def set_field(
    session: Session, review_id: int, field: str, value: str, user: User, now: datetime, *, tz: tzinfo
) -> Review:
    """Set one field of the template from text (dates as YYYY-MM-DD, a due date the end of that day in `tz`;
    empty text clears)."""
    review = get_review(session, review_id)
    if field not in SETTABLE:
        raise InputError(f"unknown field {field!r}: choose from {', '.join(SETTABLE)}")
    _editable(review, user, [field])
    text = value.strip()
    if field in TEXT_FIELDS:
        setattr(review, field, text or None)
    elif field == "next_review_date":
        review.next_review_date = _date(text, field) if text else None
    elif field == "due_at":
        review.due_at = end_of_day(_date(text, field), tz)
    elif field == "priority":
        if text not in PRIORITIES:
            raise InputError(f"priority {text!r}: choose from {', '.join(PRIORITIES)}")
        review.priority = text
    else:  # reviewer / approver
        get_user(session, text, what=field)
        if text == (review.approver if field == "reviewer" else review.reviewer):
            raise InputError(f"{field}: {text} cannot be both reviewer and approver (four-eyes)")
        setattr(review, field, text)
    _touch(session, review, user, now, [field])
    return review


def _date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{field}: {text!r} is not a date (YYYY-MM-DD)") from None


def fill(session: Session, review_id: int, form: ReviewForm, user: User, now: datetime) -> Review:
    """Apply a validated form; `risks`, when given, replaces all risks and their actions."""
    review = get_review(session, review_id)
    fields = sorted(form.model_fields_set)
    _editable(review, user, fields)
    for field in fields:
        if field != "risks":
            setattr(review, field, getattr(form, field))
    if form.risks is not None:
        review.risks.clear()
        review.actions.clear()
        session.flush()
        for number, risk in enumerate(form.risks, start=1):
            review.risks.append(
                Risk(
                    number=number,
                    description=risk.description,
                    evidence=risk.evidence,
                    category=risk.category,
                    severity=risk.severity,
                    impact=risk.impact,
                )
            )
            for action in risk.actions:
                review.actions.append(
                    MitigationAction(
                        number=len(review.actions) + 1,
                        risk_number=number,
                        description=action.description,
                        owner=action.owner,
                        due_date=action.due_date,
                        success_criteria=action.success_criteria,
                        status=action.status,
                    )
                )
    _touch(session, review, user, now, fields)
    return review


def add_risk(
    session: Session,
    review_id: int,
    user: User,
    now: datetime,
    description: str,
    evidence: str | None = None,
    category: str = "customer",
    severity: str = "medium",
    impact: str | None = None,
) -> Risk:
    """Append a risk to the template."""
    from pulsecheck.workflow.review_form import RiskForm, parse_form

    review = get_review(session, review_id)
    _editable(review, user, ["risks"])
    data = {
        "description": description,
        "evidence": evidence,
        "category": category,
        "severity": severity,
        "impact": impact,
    }
    parse_form({"risks": [data]}, "risk")  # validates the choices with the form's messages
    form = RiskForm.model_validate(data)
    risk = Risk(number=len(review.risks) + 1, **form.model_dump(exclude={"actions"}))
    review.risks.append(risk)
    _touch(session, review, user, now, ["risks"])
    return risk


def add_action(
    session: Session,
    review_id: int,
    user: User,
    now: datetime,
    risk_number: int,
    description: str,
    owner: str | None = None,
    due_date: date | None = None,
    success_criteria: str | None = None,
) -> MitigationAction:
    """Append a mitigation action to one risk of the template."""
    review = get_review(session, review_id)
    _editable(review, user, ["actions"])
    if not any(r.number == risk_number for r in review.risks):
        raise InputError(f"--risk {risk_number}: review {review.id} has no risk {risk_number}")
    if not description.strip():
        raise InputError("action description is empty")
    action = MitigationAction(
        number=len(review.actions) + 1,
        risk_number=risk_number,
        description=description.strip(),
        owner=owner,
        due_date=due_date,
        success_criteria=success_criteria,
    )
    review.actions.append(action)
    _touch(session, review, user, now, ["actions"])
    return action


# --- reading ------------------------------------------------------------------------------------


def list_reviews(
    session: Session, state: str | None = None, user: str | None = None, account_id: int | None = None
) -> list[Review]:
    """Reviews, newest first; `user` keeps those where they are reviewer or approver."""
    if state is not None and state not in machine.STATES:
        raise InputError(f"--state {state!r}: choose from {', '.join(machine.STATES)}")
    query = select(Review).order_by(Review.id.desc())
    if state:
        query = query.where(Review.state == state)
    if user:
        query = query.where((Review.reviewer == user) | (Review.approver == user))
    if account_id is not None:
        query = query.where(Review.account_id == account_id)
    return list(session.scalars(query))


def verify(review: Review) -> list[str]:
    """Problems with the signatures: empty when every signature matches the current content."""
    content = content_of(review)
    problems = []
    if review.employee_digest and review.employee_digest != machine.employee_digest(content):
        problems.append(f"employee signature of {review.employee_signed_by} no longer matches the content")
    if review.manager_digest and review.manager_digest != machine.manager_digest(content):
        problems.append(f"manager signature of {review.manager_signed_by} no longer matches the content")
    return problems


def replayed_state(review: Review) -> str:
    """The state the audit trail leads to (a check that nothing bypassed the state machine)."""
    return machine.replay([(e.event, e.from_state, e.to_state) for e in review.events if e.event != "edit"])


def count_by_state(session: Session) -> dict[str, int]:
    """Number of reviews per state."""
    rows = session.execute(select(Review.state, func.count()).group_by(Review.state))
    return {state: count for state, count in rows}


def review_dict(review: Review, with_history: bool = True) -> dict[str, Any]:
    """The stable JSON shape of a review (documented in README)."""

    def iso(value: date | datetime | None) -> str | None:
        return value.isoformat() if value else None

    account: Account = review.account
    data: dict[str, Any] = {
        "id": review.id,
        "account": account.external_id,
        "account_name": account.name,
        "state": review.state,
        "kind": review.kind,
        "priority": review.priority,
        "reviewer": review.reviewer,
        "approver": review.approver,
        "due_at": iso(review.due_at),
        "created_at": iso(review.created_at),
        "baseline": {"score": review.baseline_score, "bucket": review.baseline_bucket},
        "account_goals": review.account_goals,
        "goal_summary": review.goal_summary,
        "overall_assessment": review.overall_assessment,
        "next_review_date": iso(review.next_review_date),
        "employee_comments": review.employee_comments,
        "manager_comments": review.manager_comments,
        "risks": [
            {
                "number": r.number,
                "description": r.description,
                "evidence": r.evidence,
                "category": r.category,
                "severity": r.severity,
                "impact": r.impact,
            }
            for r in review.risks
        ],
        "actions": [
            {
                "number": a.number,
                "risk": a.risk_number,
                "description": a.description,
                "owner": a.owner,
                "due_date": iso(a.due_date),
                "success_criteria": a.success_criteria,
                "status": a.status,
            }
            for a in review.actions
        ],
        "signatures": {
            "employee": {
                "by": review.employee_signed_by,
                "at": iso(review.employee_signed_at),
                "digest": review.employee_digest,
            },
            "manager": {
                "by": review.manager_signed_by,
                "at": iso(review.manager_signed_at),
                "digest": review.manager_digest,
            },
        },
        "signature_problems": verify(review),
    }
    if with_history:
        data["history"] = [event_dict(e) for e in review.events]
    return data


def event_dict(event: ReviewEvent) -> dict[str, Any]:
    """The stable JSON shape of one audit row."""
    return {
        "event": event.event,
        "from": event.from_state,
        "to": event.to_state,
        "actor": event.actor,
        "comment": event.comment,
        "at": event.at.isoformat(),
        "cause": event.cause,
    }
