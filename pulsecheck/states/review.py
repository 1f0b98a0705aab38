"""The review state machine of DESIGN.md section 5: a table, named guards, one shared Machine."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from functools import cached_property
from operator import attrgetter
from typing import Any, NamedTuple

from pulsecheck.jsontext import REVIEW_SIGNATURE, plain, tree_encoder
from pulsecheck.states import permissions
from pulsecheck.states.guarded import NEW as NEW
from pulsecheck.states.guarded import GuardedMachine, comment_given
from pulsecheck.vocab import REVIEW_STATES

STATES = list(REVIEW_STATES)
EDITABLE_STATES = ("draft", "submitted")  # approved content is frozen: changing it takes `reopen`

# The table of DESIGN.md section 5; `"="` keeps the state (escalate).
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "open", "source": NEW, "dest": "draft"},
    {"trigger": "submit", "source": "draft", "dest": "submitted"},
    {"trigger": "approve", "source": "submitted", "dest": "approved"},
    {"trigger": "reject", "source": "submitted", "dest": "draft"},
    {"trigger": "reopen", "source": "approved", "dest": "draft"},
    {"trigger": "escalate", "source": ["draft", "submitted", "approved"], "dest": "="},
    {"trigger": "close", "source": "approved", "dest": "closed"},
    {"trigger": "withdraw", "source": "draft", "dest": "closed"},
    {"trigger": "reassign", "source": ["draft", "submitted"], "dest": "="},
]
EVENTS = [row["trigger"] for row in TRANSITIONS]
TEXT_FIELDS = ("account_goals", "goal_summary", "overall_assessment", "employee_comments", "manager_comments")
SETTABLE = (*TEXT_FIELDS, "next_review_date", "priority", "due_at", "reviewer", "approver")


@dataclass(frozen=True)
class RiskData:
    number: int
    description: str
    evidence: str | None = None
    category: str = "customer"
    severity: str = "medium"
    impact: str | None = None


@dataclass(frozen=True)
class ActionData:
    number: int
    description: str
    risk_number: int | None = None
    owner: str | None = None
    due_date: date | None = None
    success_criteria: str | None = None
    status: str = "open"


@dataclass(frozen=True)
class AttachmentData:
    number: int
    filename: str
    sha256: str
    note: str | None = None


@dataclass(frozen=True)
class ReviewContent:
    """The filled template: what signatures bind to."""

    account: str
    reviewer: str
    approver: str | None = None
    account_goals: str | None = None
    goal_summary: str | None = None
    overall_assessment: str | None = None
    next_review_date: date | None = None
    employee_comments: str | None = None
    manager_comments: str | None = None
    risks: tuple[RiskData, ...] = field(default_factory=tuple)
    actions: tuple[ActionData, ...] = field(default_factory=tuple)
    attachments: tuple[AttachmentData, ...] = field(default_factory=tuple)
    # the scorecard the review was opened on (plain JSON data, never changed): signed with the rest
    baseline: dict[str, Any] | None = field(default=None, hash=False)

    @cached_property
    def signed_data(self) -> dict[str, Any]:
        """What the signatures cover (`_signed_data`), made once per template: an approval checks the reviewer's
        digest and makes the manager's, a close checks both, of one template. Not to be changed: each digest
        takes a copy."""
        return _signed_data(self)


class Context(NamedTuple):  # not a dataclass, whose making costs every command's start-up more (issue 17)
    """Who does what, when: what the guards decide on."""

    content: ReviewContent
    actor: str
    actor_roles: frozenset[str]
    now: datetime
    comment: str | None = None
    cause: str = "user"
    employee_digest: str | None = None
    manager_digest: str | None = None
    reviewer_manager: str | None = None  # the reviewer's manager (a relation the permission table names)

    def who(self) -> permissions.Actor:
        """The actor as the permission table sees them: roles, relations to this review, cause."""
        parties = {"its_reviewer": self.content.reviewer, "its_approver": self.content.approver}
        managers = {self.content.reviewer: self.reviewer_manager}
        return permissions.actor(self.actor, self.actor_roles, parties, managers, self.cause)


def _signed_data(content: ReviewContent) -> dict[str, Any]:
    """What the signatures cover, as `asdict(content)` gives it but for the baseline, which is in the plain JSON
    values `jsontext.plain` makes of it: the records as lists of field mappings (built here for the template's
    few shapes, without the deep copy and the generic walk). Dates stay dates: the digest's encoder spells them
    as `plain` does (`_json_text`)."""
    data = dict(zip(_SCALAR_FIELDS, _scalars(content), strict=True))
    for name in _RECORD_FIELDS:
        data[name] = [dict(zip(*_FIELDS[type(item)](item), strict=True)) for item in getattr(content, name)]
    if not data["attachments"]:
        data.pop("attachments")  # so a review without attachments keeps the digest it was signed with before
    if content.baseline is not None:  # likewise a review opened before baselines were scorecards, or on no snapshot
        data["baseline"] = plain(content.baseline)
    return data


_RECORD_FIELDS = ("risks", "actions", "attachments")
_SCALAR_FIELDS = tuple(f.name for f in fields(ReviewContent) if f.name not in (*_RECORD_FIELDS, "baseline"))
_scalars = attrgetter(*_SCALAR_FIELDS)


def _record_fields(kind: type[Any]) -> Callable[[Any], tuple[tuple[str, ...], tuple[Any, ...]]]:
    """A record's field names and its values of them, in one C-level call (`attrgetter`) for the values."""
    names = tuple(f.name for f in fields(kind))
    values = attrgetter(*names)
    return lambda item: (names, values(item))


_FIELDS = {kind: _record_fields(kind) for kind in (RiskData, ActionData, AttachmentData)}


def _date_text(value: Any) -> Any:
    """The digest encoder's spelling of what JSON has no form of: a date (or datetime) as `jsontext.plain` spells
    it; anything else is refused as json refuses it."""
    if isinstance(value, date):
        return plain(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_json_text = tree_encoder(REVIEW_SIGNATURE, _date_text)  # `json.dumps(plain(data), ...)`, made once


def _digest(data: dict[str, Any]) -> str:
    """`canonical_digest(data, REVIEW_SIGNATURE)` of data in plain JSON values but for dates (`plain` would only
    copy it again)."""
    return hashlib.sha256(_json_text(data).encode("utf-8")).hexdigest()


def employee_digest(content: ReviewContent) -> str:
    """SHA-256 over everything the reviewer signs (all but the manager's comments)."""
    data = dict(content.signed_data)
    data.pop("manager_comments")
    data.pop("approver")
    return _digest(data)


def manager_digest(content: ReviewContent) -> str:
    """SHA-256 over everything the manager signs: the reviewer's content plus the manager's comments."""
    data = dict(content.signed_data)
    data.pop("approver")
    return _digest(data)


# --- guards: each returns a reason (refused) or None (allowed) ---------------------------------

Guard = Callable[[Context], str | None]


def permitted(action: str) -> Guard:
    """A guard reading the permission table's row of `action`."""

    def guard(ctx: Context) -> str | None:
        return permissions.refusal(action, ctx.who())

    guard.__name__ = f"permitted_{action.replace('.', '_')}"
    return guard


def missing_for_submit(content: ReviewContent, today: date) -> list[str]:
    """Every reason the template is not ready to submit (the web form shows them all at once)."""
    c = content
    missing = [
        f"{name} is empty"
        for name, value in (("account_goals", c.account_goals), ("goal_summary", c.goal_summary))
        if not (value or "").strip()
    ]
    if not c.risks:
        missing.append("the review has no risk (add one with `review risk add`)")
    if not (c.overall_assessment or "").strip():
        missing.append("overall_assessment is empty")
    if c.next_review_date is None:
        missing.append("next_review_date is not set")
    elif c.next_review_date <= today:
        missing.append(f"next_review_date {c.next_review_date} is not in the future")
    for risk in c.risks:
        if not any(a.risk_number == risk.number and (a.owner or "").strip() and a.due_date for a in c.actions):
            missing.append(f"risk {risk.number} has no mitigation action with an owner and a due date")
    return missing


def required_fields_present(ctx: Context) -> str | None:
    """Every field submit needs, all problems at once (a reviewer fixes them in one go, not one per attempt)."""
    problems = missing_for_submit(ctx.content, ctx.now.date())
    if len(problems) > 1:
        return f"{len(problems)} problems: " + "; ".join(problems)
    return problems[0] if problems else None


def four_eyes(ctx: Context) -> str | None:
    if ctx.actor == ctx.content.reviewer:
        return f"{ctx.actor} is the reviewer and cannot approve their own review"
    return None


def manager_comments_present(ctx: Context) -> str | None:
    if not (ctx.content.manager_comments or "").strip():
        return "manager_comments is empty (pass --comment or `review set ID manager_comments ...`)"
    return None


def submission_unchanged(ctx: Context) -> str | None:
    if ctx.employee_digest and ctx.employee_digest != employee_digest(ctx.content):
        return "the review changed after the reviewer signed it; reject it or have it re-submitted"
    return None


def signatures_verify(ctx: Context) -> str | None:
    """Both signatures present and matching the content: a review changed or unsigned behind the state
    machine's back is not closed as if it were approved."""
    if not ctx.employee_digest or ctx.employee_digest != employee_digest(ctx.content):
        return "the reviewer's signature does not verify (see `review verify`); reopen the review"
    if not ctx.manager_digest or ctx.manager_digest != manager_digest(ctx.content):
        return "the approver's signature does not verify (see `review verify`); reopen the review"
    return None


GUARDS: dict[str, Sequence[Guard]] = {
    "open": (permitted("review.open"),),
    "submit": (permitted("review.submit"), required_fields_present),
    "approve": (four_eyes, permitted("review.approve"), manager_comments_present, submission_unchanged),
    "reject": (permitted("review.reject"), comment_given),
    "reopen": (permitted("review.reopen"),),
    "escalate": (permitted("review.escalate"),),
    "close": (permitted("review.close"), signatures_verify),
    "withdraw": (permitted("review.withdraw"), comment_given),
    "reassign": (permitted("review.reassign"), comment_given),
}


MACHINE = GuardedMachine("review", STATES, TRANSITIONS, GUARDS)


def fire(state: str, event: str, ctx: Context) -> str:
    """Apply `event` to a review in `state`; return the new state or raise RefusedError with the reason."""
    return MACHINE.fire(state, event, ctx)


def allowed_events(state: str) -> list[str]:
    """Events whose source includes `state` (guards not checked)."""
    return MACHINE.allowed_events(state)


def replay(events: Sequence[tuple[str, str | None, str]]) -> str:
    """The state a review reaches through its audit rows (event, from, to); refuses an impossible row."""
    return MACHINE.replay(events)
