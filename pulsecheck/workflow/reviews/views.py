"""What a review looks like from outside: its plain-data content (what signatures and guards see), the checks
that its signatures and audit trail still hold, the review list, and the JSON shapes of a review and its audit rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload, object_session, selectinload

from pulsecheck.errors import InputError, NotFoundError
from pulsecheck.states import review as machine
from pulsecheck.storage.models import Account, AttachmentLink, MitigationAction, Review, ReviewEvent, Risk, User
from pulsecheck.storage.paging import Page, PageRequest, fetch_page
from pulsecheck.timeutil import iso
from pulsecheck.workflow import attachments


def get_review(session: Session, review_id: int) -> Review:
    """A review by id, or an input error."""
    review = session.get(Review, review_id)
    if review is None:
        raise NotFoundError(f"unknown review {review_id}")
    return review


def content_of(review: Review, links: list[AttachmentLink] | None = None) -> machine.ReviewContent:
    """The plain-data template of a review, as signatures and guards see it; `links` are its attachment links when
    the caller read them already (else they are read here)."""
    bound = (
        attachments.review_attachments(object_session(review), review.id) if links is None
        else tuple(machine.AttachmentData(k.number, k.filename, k.sha256, k.note) for k in links)
    )
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
        attachments=bound,
        baseline=review.baseline,
    )


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


class ReviewFilter(NamedTuple):  # not a dataclass, whose making costs every command's start-up more (issue 17)
    """Which reviews a list shows; None means any. `person` keeps those they review or approve, `reviewer`
    those they review."""

    state: str | None = None
    person: str | None = None
    reviewer: str | None = None
    account_id: int | None = None
    priority: str | None = None
    kind: str | None = None
    due_before: datetime | None = None

    def where(self) -> list[Any]:
        """The SQL conditions."""
        if self.state is not None and self.state not in machine.STATES:
            raise InputError(f"--state {self.state!r}: choose from {', '.join(machine.STATES)}")
        conditions: list[Any] = []
        if self.person:
            conditions.append((Review.reviewer == self.person) | (Review.approver == self.person))
        for column, value in (
            (Review.state, self.state), (Review.reviewer, self.reviewer), (Review.account_id, self.account_id),
            (Review.priority, self.priority),
        ):
            if value is not None:
                conditions.append(column == value)
        if self.kind is not None:  # reviews a rule opened before kind `rule` existed say out_of_cycle
            conditions.append(Review.kind.in_(("rule", "out_of_cycle") if self.kind == "rule" else (self.kind,)))
        if self.due_before is not None:
            conditions.append(Review.due_at < self.due_before)
        return conditions


def review_page(session: Session, request: PageRequest, chosen: ReviewFilter) -> Page[dict[str, Any]]:
    """One page of reviews (newest first by default) in their JSON shape without history: the reviews with their
    accounts, then their risks, actions and events (one query each for the page), checked in a few queries for
    the page (`verify_many`), not a dozen per review."""
    query = (
        select(Review)
        .options(joinedload(Review.account), selectinload(Review.risks), selectinload(Review.actions),
                 selectinload(Review.events))
        .where(*chosen.where())
    )
    sorts = {
        "newest": (Review.id.desc(),),
        "due": (Review.due_at.is_(None), Review.due_at, Review.id),
        "priority": (Review.priority, Review.due_at, Review.id),
        "account": (Review.account_id, Review.id.desc()),
    }
    count = select(Review.id).where(*chosen.where())
    page = fetch_page(session, query, request, sorts, count=count)
    problems = verify_many(session, page.items)
    return page.map(lambda r: review_dict(r, with_history=False, problems=problems[r.id]))


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
    if links is None and session is not None and review.id is not None:
        links = attachments.links_of(session, attachments.REVIEW, review.id)
    problems = _content_problems(review, links)
    if session is not None:
        session.flush()  # the chain is compared with what the database holds
        problems += chain_problems(session, [review, *review.events], signatures)
    return problems


VERIFIED_AT_ONCE = 200  # reviews `verify_many` checks together (their ids and events' ids in a statement)


def verify_many(session: Session, found: list[Review]) -> dict[int, list[str]]:
    """`verify(review, signatures=False)` of each review, by id: their attachment links and audit chain entries
    read for many reviews at once."""
    from pulsecheck.workflow.audit import chain_problems_of

    session.flush()  # the chain is compared with what the database holds
    problems: dict[int, list[str]] = {}
    for start in range(0, len(found), VERIFIED_AT_ONCE):
        part = found[start : start + VERIFIED_AT_ONCE]
        links: dict[int, list[AttachmentLink]] = {review.id: [] for review in part}
        for link in attachments.links_of_records(session, attachments.REVIEW, list(links)):
            links[link.record_id].append(link)
        chained = chain_problems_of(session, [[review, *review.events] for review in part])
        for review, chain in zip(part, chained, strict=True):
            problems[review.id] = _content_problems(review, links[review.id]) + chain
    return problems


def _content_problems(review: Review, links: list[AttachmentLink] | None) -> list[str]:
    """The signatures that no longer match the review's content, and the attachments whose stored bytes are
    missing or changed."""
    content = content_of(review, links)
    problems = []
    if review.employee_digest and review.employee_digest != machine.employee_digest(content):
        problems.append(f"employee signature of {review.employee_signed_by} no longer matches the content")
    if review.manager_digest and review.manager_digest != machine.manager_digest(content):
        problems.append(f"manager signature of {review.manager_signed_by} no longer matches the content")
    session = object_session(review)
    if session is not None:
        problems += attachments.problems(session, links or [], f"review {review.id}")
    return problems


def replayed_state(review: Review) -> str:
    """The state the audit trail leads to (a check that nothing bypassed the state machine)."""
    return machine.replay([(e.event, e.from_state, e.to_state) for e in review.events if e.event != "edit"])


def review_dict(
    review: Review, with_history: bool = True, with_context: bool = False, links: list[AttachmentLink] | None = None,
    problems: list[str] | None = None,
) -> dict[str, Any]:
    """The stable JSON shape of a review (documented in README). `with_context` (one review shown or exported,
    not a list) adds the baseline's scorecard (`baseline.scorecard`, null for a review opened before reviews
    carried one) and the account as it is now (`account_context`: segment, ARR, renewal, owner, current score).
    `links`: the review's attachment links when the caller read them already; `problems`: its
    `verify(signatures=False)` when the caller checked it already (`verify_many`)."""
    account: Account = review.account
    data: dict[str, Any] = {
        "id": review.id,
        "account": account.external_id,
        "account_name": account.name,
        "state": review.state,
        "kind": "rule" if review.kind == "out_of_cycle" else review.kind,  # rows from before kind `rule`
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
        "risks": [_risk_dict(r) for r in review.risks],
        "actions": [_action_dict(a) for a in review.actions],
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
        # `review verify` runs ssh-keygen, `show` not
        "signature_problems": verify(review, signatures=False, links=links) if problems is None else problems,
    }
    if with_context:
        data["baseline"]["scorecard"] = review.baseline
        from pulsecheck.workflow import scorecards  # a list (no context) does not load the scoring side

        session = object_session(review)
        data["account_context"] = scorecards.account_context(session, account) if session is not None else None
    if with_history:
        data["history"] = [event_dict(e) for e in review.events]
    return data


def _risk_dict(r: Risk) -> dict[str, Any]:
    return {
        "number": r.number,
        "description": r.description,
        "evidence": r.evidence,
        "category": r.category,
        "severity": r.severity,
        "impact": r.impact,
    }


def _action_dict(a: MitigationAction) -> dict[str, Any]:
    return {
        "number": a.number,
        "risk": a.risk_number,
        "description": a.description,
        "owner": a.owner,
        "due_date": iso(a.due_date),
        "success_criteria": a.success_criteria,
        "status": a.status,
    }


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
