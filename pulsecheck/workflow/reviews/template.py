"""Filling a review's template while it is editable: one field from text, a whole validated form, or one more
risk or mitigation action. A change after signing is audited (and voids the signatures, see `review verify`)."""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError, RefusedError
from pulsecheck.states import permissions
from pulsecheck.states import review as machine
from pulsecheck.states.review import SETTABLE, TEXT_FIELDS
from pulsecheck.storage.models import AttachmentLink, MitigationAction, Review, ReviewEvent, Risk, User
from pulsecheck.timeutil import end_of_day, parse_date
from pulsecheck.vocab import PRIORITIES
from pulsecheck.workflow.attachments import REVIEW, Upload, attach
from pulsecheck.workflow.reviews.views import get_review
from pulsecheck.workflow.users import get_user

if TYPE_CHECKING:
    from pulsecheck.workflow.review_form import ReviewForm


# Fields only the approver's side sets; the approver itself moves only through `review reassign` (audited).
MANAGER_FIELDS = ("manager_comments", "priority", "due_at", "reviewer")


def _editable(session: Session, review: Review, user: User, fields: list[str]) -> None:
    """Refused when the review is approved (frozen: `reopen` it) or closed, or the permission table does not
    let `user` change these fields of it."""
    if review.state == "approved":
        raise RefusedError(
            f"review {review.id} is approved and frozen: reopen it to change it (signatures are cleared)"
        )
    if review.state not in machine.EDITABLE_STATES:
        raise RefusedError(f"review {review.id} is {review.state} and read-only")
    if "approver" in fields:
        raise RefusedError("the approver changes with `review reassign ID --approver M --comment TEXT`")
    manager = session.scalar(select(User.manager_name).where(User.name == review.reviewer))
    parties = {"its_reviewer": review.reviewer, "its_approver": review.approver}
    who = permissions.actor(user.name, user.role_set, parties, {review.reviewer: manager})
    action = "review.edit_manager_fields" if set(fields) & set(MANAGER_FIELDS) else "review.edit"
    reason = permissions.refusal(action, who)
    if reason:
        raise RefusedError(f"review {review.id}: {reason}")


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
    _editable(session, review, user, [field])
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
        return parse_date(text)
    except ValueError as exc:
        raise InputError(f"{field}: {exc}") from None


def fill(session: Session, review_id: int, form: ReviewForm, user: User, now: datetime) -> Review:
    """Apply a validated form; `risks`, when given, replaces all risks and their actions."""
    review = get_review(session, review_id)
    fields = sorted(form.model_fields_set)
    _editable(session, review, user, fields)
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
    _editable(session, review, user, ["risks"])
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
    _editable(session, review, user, ["actions"])
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


def attach_file(
    session: Session, review_id: int, upload: Upload, user: User, now: datetime, note: str | None = None
) -> AttachmentLink:
    """Attach a file to a review the user may edit, like any other edit of its template: an approved review is
    frozen, and after signing it is an audited edit that voids the signatures (they bind the attachment list)."""
    review = get_review(session, review_id)
    _editable(session, review, user, ["attachments"])
    link = attach(session, REVIEW, review.id, upload, user.name, now, note)
    _touch(session, review, user, now, [f"attachments (added {link.number}: {link.filename})"])
    return link
