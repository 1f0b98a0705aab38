"""Reviews as the read commands see them, on SQLAlchemy Core: a review's row with its account, risks, actions and
events (`ReviewRecord`), read for a page of reviews in a few queries; the content its signatures cover; the checks
that its signatures, attachments and audit trail still hold; and the JSON shapes. `review list`, `review show` and
`review history` import no ORM (issue 17); `views` gives the same shapes and checks for mapped `Review` objects (a
mapped object has the same attribute names as a record, so the functions here serve both)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import select

from pulsecheck.errors import InputError, NotFoundError
from pulsecheck.states import review as machine
from pulsecheck.storage.paging import Page, PageRequest, fetch_page
from pulsecheck.storage.tables import ACCOUNTS, MITIGATION_ACTIONS, REVIEW_EVENTS, REVIEWS, RISKS
from pulsecheck.timeutil import iso
from pulsecheck.workflow import attachments

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

_REVIEW = REVIEWS.c
AT_ONCE = 200  # reviews read and checked together (their ids, and their events' ids, in one statement)


class ReviewRecord:
    """A review read on Core: its row's columns as attributes (as a mapped `Review` has them), with its account
    (row), risks and actions (rows, by number) and events (rows, oldest first)."""

    __slots__ = ("_row", "account", "actions", "events", "risks")

    def __init__(self, row: Any, account: Any, risks: list[Any], actions: list[Any], events: list[Any]) -> None:
        self._row, self.account, self.risks, self.actions, self.events = row, account, risks, actions, events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


def _grouped(db: Session | Connection, table: Any, ids: list[int], *order: Any) -> dict[int, list[Any]]:
    """The rows of `table` belonging to the reviews `ids`, by review, in `order`."""
    found: dict[int, list[Any]] = defaultdict(list)
    for row in db.execute(select(table).where(table.c.review_id.in_(ids)).order_by(table.c.review_id, *order)):
        found[row.review_id].append(row)
    return found


def read_reviews(db: Session | Connection, ids: list[int]) -> list[ReviewRecord]:
    """The reviews `ids` that exist, in that order, each with its account, risks, actions and events: five queries
    for up to `AT_ONCE` reviews."""
    records: dict[int, ReviewRecord] = {}
    for start in range(0, len(ids), AT_ONCE):
        part = ids[start : start + AT_ONCE]
        rows = list(db.execute(select(REVIEWS).where(_REVIEW.id.in_(part))))
        wanted = sorted({row.account_id for row in rows})
        accounts = {row.id: row for row in db.execute(select(ACCOUNTS).where(ACCOUNTS.c.id.in_(wanted)))}
        risks = _grouped(db, RISKS, part, RISKS.c.number)
        actions = _grouped(db, MITIGATION_ACTIONS, part, MITIGATION_ACTIONS.c.number)
        events = _grouped(db, REVIEW_EVENTS, part, REVIEW_EVENTS.c.id)
        for row in rows:
            records[row.id] = ReviewRecord(
                row, accounts[row.account_id], risks.get(row.id, []), actions.get(row.id, []), events.get(row.id, [])
            )
    return [records[review_id] for review_id in ids if review_id in records]


def read_review(db: Session | Connection, review_id: int) -> ReviewRecord:
    """One review with its account, risks, actions and events, or an input error."""
    found = read_reviews(db, [review_id])
    if not found:
        raise NotFoundError(f"unknown review {review_id}")
    return found[0]


def shown(db: Session | Connection, review_id: int, with_history: bool = False) -> dict[str, Any]:
    """What `review show` prints (and `review export`, `with_history`): the review in its JSON shape with its
    account's context, checked as a list checks it (content, attachments, audit chain; `review verify` adds the
    SSH signatures)."""
    from pulsecheck.workflow.account_views import account_context

    review = read_review(db, review_id)
    problems = problems_of(db, [review])[review.id]
    context = account_context(db, review.account_id)
    return shape(review, problems, with_history, with_context=True, account_context=context)


def review_links(db: Session | Connection, review_id: int) -> list[dict[str, Any]]:
    """A review's attachments in their JSON shape (`review attachments`), or an input error for an unknown
    review."""
    must_exist(db, review_id)
    return [attachments.link_dict(db, link) for link in attachments.links_of(db, attachments.REVIEW, review_id)]


def must_exist(db: Session | Connection, review_id: int) -> None:
    """An input error unless review `review_id` exists."""
    if db.execute(select(_REVIEW.id).where(_REVIEW.id == review_id)).first() is None:
        raise NotFoundError(f"unknown review {review_id}")


def review_events(db: Session | Connection, review_id: int) -> list[Any]:
    """A review's audit rows, oldest first (`review history`), or an input error for an unknown review."""
    must_exist(db, review_id)
    query = select(REVIEW_EVENTS).where(REVIEW_EVENTS.c.review_id == review_id).order_by(REVIEW_EVENTS.c.id)
    return list(db.execute(query))


def account_id_of(db: Session | Connection, ref: str) -> int:
    """The id of the account `ref` names (its external id, or its internal numeric id), or an input error."""
    found = db.execute(select(ACCOUNTS.c.id).where(ACCOUNTS.c.external_id == ref)).scalar()
    if found is None and ref.isascii() and ref.isdigit():
        found = db.execute(select(ACCOUNTS.c.id).where(ACCOUNTS.c.id == int(ref))).scalar()
    if found is None:
        raise NotFoundError(f"unknown account {ref!r}")
    return int(found)


def content_from(review: Any, links: list[Any]) -> machine.ReviewContent:
    """The plain-data template of a review (a record or a mapped `Review`), as signatures and guards see it, with
    its attachment links (rows or mapped links)."""
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
        attachments=tuple(machine.AttachmentData(k.number, k.filename, k.sha256, k.note) for k in links),
        baseline=review.baseline,
    )


def mismatched_signatures(review: Any, links: list[Any]) -> list[str]:
    """The signatures that no longer match the review's content."""
    content = content_from(review, links)
    problems = []
    if review.employee_digest and review.employee_digest != machine.employee_digest(content):
        problems.append(f"employee signature of {review.employee_signed_by} no longer matches the content")
    if review.manager_digest and review.manager_digest != machine.manager_digest(content):
        problems.append(f"manager signature of {review.manager_signed_by} no longer matches the content")
    return problems


def content_problems(db: Session | Connection, review: Any, links: list[Any]) -> list[str]:
    """The signatures that no longer match the review's content, and the attachments whose stored bytes are
    missing or changed."""
    return mismatched_signatures(review, links) + attachments.problems(db, links, f"review {review.id}")


def chain_keys(review: Any) -> list[tuple[str, int]]:
    """The audit chain's keys of a review and its events (what its check compares)."""
    return [("review", review.id), *(("review_event", event.id) for event in review.events)]


def problems_of(db: Session | Connection, found: list[Any]) -> dict[int, list[str]]:
    """Each review's `verify(signatures=False)`, by id: content, attachments and audit chain, their attachment
    links and chain entries read for `AT_ONCE` reviews at a time."""
    from pulsecheck.workflow.chaincheck import problems_of as chain_problems_of

    problems: dict[int, list[str]] = {}
    for start in range(0, len(found), AT_ONCE):
        part = found[start : start + AT_ONCE]
        links: dict[int, list[Any]] = {review.id: [] for review in part}
        for link in attachments.links_of_records(db, attachments.REVIEW, list(links)):
            links[link.record_id].append(link)
        chained = chain_problems_of(db, [chain_keys(review) for review in part])
        for review, chain in zip(part, chained, strict=True):
            problems[review.id] = content_problems(db, review, links[review.id]) + chain
    return problems


class Verified(NamedTuple):
    """What `review verify` found: the review, its problems, and one line per signed sign-off of it."""

    review: ReviewRecord
    problems: list[str]
    signatures: list[str]


def verification(db: Session | Connection, review_id: int) -> Verified:
    """`review verify`: what a list checks (content, attachments, audit chain), the SSH signatures of its sign-offs
    (against the keys registered at the time), and its audit trail replayed through the state machine."""
    from pulsecheck.workflow.chaincheck import problems_of as chain_problems_of
    from pulsecheck.workflow.chaincheck import signature_problems
    from pulsecheck.workflow.signoffs import describe_signatures

    review = read_review(db, review_id)
    links = attachments.links_of(db, attachments.REVIEW, review.id)
    keys = chain_keys(review)
    problems = content_problems(db, review, links) + chain_problems_of(db, [keys])[0] + signature_problems(db, keys)
    replayed = replayed_state(review)
    if replayed != review.state:
        problems.append(f"state is {review.state} but the audit trail leads to {replayed}")
    signatures = describe_signatures(db, "review_event", [event.id for event in review.events])
    return Verified(review, problems, signatures)


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
            conditions.append((_REVIEW.reviewer == self.person) | (_REVIEW.approver == self.person))
        for column, value in (
            (_REVIEW.state, self.state), (_REVIEW.reviewer, self.reviewer), (_REVIEW.account_id, self.account_id),
            (_REVIEW.priority, self.priority),
        ):
            if value is not None:
                conditions.append(column == value)
        if self.kind is not None:  # reviews a rule opened before kind `rule` existed say out_of_cycle
            conditions.append(_REVIEW.kind.in_(("rule", "out_of_cycle") if self.kind == "rule" else (self.kind,)))
        if self.due_before is not None:
            conditions.append(_REVIEW.due_at < self.due_before)
        return conditions


SORTS = {
    "newest": (_REVIEW.id.desc(),),
    "due": (_REVIEW.due_at.is_(None), _REVIEW.due_at, _REVIEW.id),
    "priority": (_REVIEW.priority, _REVIEW.due_at, _REVIEW.id),
    "account": (_REVIEW.account_id, _REVIEW.id.desc()),
}


def review_page(db: Session | Connection, request: PageRequest, chosen: ReviewFilter) -> Page[dict[str, Any]]:
    """One page of reviews (newest first by default) in their JSON shape without history: the page's ids cut in
    SQL, then the reviews read and checked a few queries for the page (`read_reviews`, `problems_of`), not a
    dozen per review."""
    page = fetch_page(db, select(_REVIEW.id).where(*chosen.where()), request, SORTS)
    found = read_reviews(db, page.items)
    problems = problems_of(db, found)
    return Page([shape(r, problems[r.id]) for r in found], page.total, page.offset, page.limit)


def replayed_state(review: Any) -> str:
    """The state the audit trail leads to (a check that nothing bypassed the state machine)."""
    return machine.replay([(e.event, e.from_state, e.to_state) for e in review.events if e.event != "edit"])


def shape(
    review: Any, problems: list[str], with_history: bool = False, with_context: bool = False,
    account_context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The stable JSON shape of a review (documented in README), a record or a mapped `Review`, given its checks'
    `problems` (`signature_problems`). `with_context` (one review shown or exported, not a list) adds the
    baseline's scorecard (`baseline.scorecard`, null for a review opened before reviews carried one) and the
    account as it is now (`account_context`, `scorecards.account_context`); `with_history` its audit rows."""
    account = review.account
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
        "signature_problems": problems,  # `review verify` runs ssh-keygen, `show` not
    }
    if with_context:
        data["baseline"]["scorecard"] = review.baseline
        data["account_context"] = account_context
    if with_history:
        data["history"] = [event_dict(e) for e in review.events]
    return data


def _risk_dict(r: Any) -> dict[str, Any]:
    return {
        "number": r.number,
        "description": r.description,
        "evidence": r.evidence,
        "category": r.category,
        "severity": r.severity,
        "impact": r.impact,
    }


def _action_dict(a: Any) -> dict[str, Any]:
    return {
        "number": a.number,
        "risk": a.risk_number,
        "description": a.description,
        "owner": a.owner,
        "due_date": iso(a.due_date),
        "success_criteria": a.success_criteria,
        "status": a.status,
    }


def event_dict(event: Any) -> dict[str, Any]:
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
