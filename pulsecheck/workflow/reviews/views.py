"""A mapped review as the services that change it see it: found by id, loaded for its page, its content and
checks, and its JSON shape, through `reading` (which reads reviews on SQLAlchemy Core for the read commands)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload, object_session, selectinload

from pulsecheck.errors import InputError, NotFoundError
from pulsecheck.states import review as machine
from pulsecheck.storage.models import Account, AttachmentLink, Review, User
from pulsecheck.workflow import attachments
from pulsecheck.workflow.reviews.reading import content_from, content_problems, mismatched_signatures, shape


def get_review(session: Session, review_id: int) -> Review:
    """A review by id, or an input error."""
    review = session.get(Review, review_id)
    if review is None:
        raise NotFoundError(f"unknown review {review_id}")
    return review


def content_of(review: Review, links: list[AttachmentLink] | None = None) -> machine.ReviewContent:
    """The plain-data template of a review, as signatures and guards see it; `links` are its attachment links when
    the caller read them already (else they are read here)."""
    bound = list(attachments.review_attachments(object_session(review), review.id)) if links is None else links
    return content_from(review, bound)


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


def review_rows(session: Session, account_id: int) -> list[tuple[int, str, str, str | None, datetime | None]]:
    """(id, state, reviewer, approver, due_at) of `list_reviews(account_id=...)`, in its order, as plain rows:
    what the account page lists, without loading each review (its baseline scorecard among the rest)."""
    query = (
        select(Review.id, Review.state, Review.reviewer, Review.approver, Review.due_at)
        .where(Review.account_id == account_id)
        .order_by(Review.id.desc())
    )
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


# What showing one review reads, in one statement built once: the review with its account and the account's owner
# (joined), its reviewer's manager (the permission table's `reviewer_manager`), then its risks, actions and events
# (one SELECT each, as lazy loads would, but without a lazy load's per-attribute round of Python).
_SHOWN = (
    select(Review, User.manager_name)
    .outerjoin(User, User.name == Review.reviewer)
    .where(Review.id == bindparam("review_id"))
    .options(
        joinedload(Review.account).joinedload(Account.owner),
        selectinload(Review.risks), selectinload(Review.actions), selectinload(Review.events),
    )
)


def load_for_show(session: Session, review_id: int) -> tuple[Review, str | None] | None:
    """The review with what `review_dict(with_context=True)` and the review page read, loaded into the session,
    and its reviewer's manager; None when there is no such review (`get_review` then says so)."""
    row = session.execute(_SHOWN, {"review_id": review_id}).first()
    return None if row is None else (row[0], row[1])


def verify(review: Review, signatures: bool = True, links: list[AttachmentLink] | None = None) -> list[str]:
    """Problems with the signatures: empty when every signature matches the current content, the review and its
    events agree with the audit chain, and (with `signatures`) each signed sign-off's SSH signature verifies.
    `links`: the review's attachment links when the caller read them already (else they are read here, once)."""
    from pulsecheck.workflow.audit import chain_problems

    session = object_session(review)
    if session is None:  # not stored: its content against its signatures only
        return mismatched_signatures(review, links or [])
    if links is None and review.id is not None:
        links = attachments.links_of(session, attachments.REVIEW, review.id)
    session.flush()  # the attachments and the chain are compared with what the database holds
    chained = chain_problems(session, [review, *review.events], signatures)
    return content_problems(session, review, links or []) + chained


def review_dict(
    review: Review, with_history: bool = True, with_context: bool = False, links: list[AttachmentLink] | None = None,
    problems: list[str] | None = None,
) -> dict[str, Any]:
    """The stable JSON shape of a mapped review (`reading.shape`), checked here unless the caller checked it
    (`problems`); `links`: its attachment links when the caller read them already."""
    context = None
    if with_context:
        from pulsecheck.workflow.account_views import account_context

        session = object_session(review)
        context = account_context(session, review.account_id) if session is not None else None
    return shape(
        review, verify(review, signatures=False, links=links) if problems is None else problems, with_history,
        with_context, context,
    )
