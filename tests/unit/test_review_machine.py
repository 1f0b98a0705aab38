"""The review state machine of DESIGN.md section 5: every row of the table, every guard, digests, replay."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pulsecheck.errors import RefusedError
from pulsecheck.states.review import (
    EVENTS,
    NEW,
    STATES,
    ActionData,
    Context,
    ReviewContent,
    RiskData,
    employee_digest,
    fire,
    manager_digest,
    replay,
)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TODAY = NOW.date()
MANAGER = frozenset({"manager"})
REVIEWER = frozenset({"reviewer"})

COMPLETE = ReviewContent(
    account="ACME",
    reviewer="bob",
    approver="maria",
    account_goals="Expand to 500 seats",
    goal_summary="320 seats, on track",
    overall_assessment="Healthy but exposed to a champion change",
    next_review_date=TODAY + timedelta(days=90),
    risks=(RiskData(1, "Champion leaving", "LinkedIn post", "customer", "high"),),
    actions=(ActionData(1, "Build a second champion", 1, "bob", TODAY + timedelta(days=30)),),
)
SIGNED = employee_digest(COMPLETE)
APPROVABLE = dataclasses.replace(COMPLETE, manager_comments="Agreed, watch the champion")

# DESIGN.md section 5, written out independently of the code: (event, from) -> to. Everything else refused.
TABLE = {
    ("open", NEW): "draft",
    ("submit", "draft"): "submitted",
    ("approve", "submitted"): "approved",
    ("reject", "submitted"): "draft",
    ("reopen", "approved"): "draft",
    ("escalate", "draft"): "draft",
    ("escalate", "submitted"): "submitted",
    ("escalate", "approved"): "approved",
    ("close", "approved"): "closed",
    ("withdraw", "draft"): "closed",
    ("reassign", "draft"): "draft",
    ("reassign", "submitted"): "submitted",
}
ALL_STATES = [NEW, *STATES]


SIGNATURES: dict[str, Any] = {"employee_digest": employee_digest(COMPLETE), "manager_digest": manager_digest(COMPLETE)}


def ctx(content: ReviewContent = COMPLETE, actor: str = "maria", roles: frozenset[str] = MANAGER,
        **changes: Any) -> Context:
    return Context(content=content, actor=actor, actor_roles=roles, now=NOW, **changes)


def permitted(event: str) -> Context:
    """A context that every guard of `event` accepts: only the table decides."""
    if event == "submit":
        return ctx(actor="bob", roles=REVIEWER)
    if event == "approve":
        return ctx(APPROVABLE, employee_digest=SIGNED)
    if event in ("reject", "withdraw", "reassign"):
        return ctx(comment="Not convincing yet", reviewer_manager="maria")
    if event in ("open", "escalate"):
        return ctx(actor="pulsecheck", roles=frozenset(), cause="rule:x")
    if event == "close":
        return ctx(APPROVABLE, employee_digest=SIGNED, manager_digest=manager_digest(APPROVABLE))
    return ctx()


def test_the_code_has_the_states_and_events_of_the_design() -> None:
    assert STATES == ["draft", "submitted", "approved", "closed"]
    assert set(EVENTS) == {event for event, _ in TABLE}


@pytest.mark.parametrize(("event", "state"), [(e, s) for e in EVENTS for s in ALL_STATES])
def test_every_event_from_every_state(event: str, state: str) -> None:
    expected = TABLE.get((event, state))
    if expected is not None:
        assert fire(state, event, permitted(event)) == expected
    else:
        with pytest.raises(RefusedError, match=rf"^cannot {event}: the review is {state} \({event} needs "):
            fire(state, event, permitted(event))


def test_an_unknown_event_is_refused_by_name() -> None:
    with pytest.raises(RefusedError, match="unknown event 'archive'"):
        fire("approved", "archive", ctx())


# --- guards ---------------------------------------------------------------------------------------

RISK_2_WITHOUT_OWNER = dataclasses.replace(
    COMPLETE,
    risks=(*COMPLETE.risks, RiskData(2, "Budget cut")),
    actions=(*COMPLETE.actions, ActionData(2, "Talk to the CFO", 2, None, TODAY + timedelta(days=7))),
)
RISK_2_WITHOUT_DUE_DATE = dataclasses.replace(
    COMPLETE,
    risks=(*COMPLETE.risks, RiskData(2, "Budget cut")),
    actions=(*COMPLETE.actions, ActionData(2, "Talk to the CFO", 2, "bob", None)),
)
RISK_2_ACTION_ON_RISK_1 = dataclasses.replace(
    COMPLETE,
    risks=(*COMPLETE.risks, RiskData(2, "Budget cut")),
    actions=(*COMPLETE.actions, ActionData(2, "Talk to the CFO", 1, "bob", TODAY)),
)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(dataclasses.replace(COMPLETE, account_goals=None), "account_goals is empty", id="goals"),
        pytest.param(dataclasses.replace(COMPLETE, account_goals="  "), "account_goals is empty",
                     id="blank-goals"),
        pytest.param(dataclasses.replace(COMPLETE, goal_summary=""), "goal_summary is empty", id="summary"),
        pytest.param(dataclasses.replace(COMPLETE, risks=(), actions=()), "the review has no risk",
                     id="no-risk"),
        pytest.param(dataclasses.replace(COMPLETE, overall_assessment=None), "overall_assessment is empty",
                     id="assessment"),
        pytest.param(dataclasses.replace(COMPLETE, next_review_date=None), "next_review_date is not set",
                     id="no-next-review"),
        pytest.param(dataclasses.replace(COMPLETE, next_review_date=TODAY),
                     f"next_review_date {TODAY} is not in the future", id="next-review-today"),
        pytest.param(dataclasses.replace(COMPLETE, next_review_date=date(2026, 1, 1)),
                     "next_review_date 2026-01-01 is not in the future", id="next-review-past"),
        pytest.param(RISK_2_WITHOUT_OWNER,
                     "risk 2 has no mitigation action with an owner and a due date", id="risk-2-no-owner"),
        pytest.param(RISK_2_WITHOUT_DUE_DATE,
                     "risk 2 has no mitigation action with an owner and a due date", id="risk-2-no-due"),
        pytest.param(RISK_2_ACTION_ON_RISK_1,
                     "risk 2 has no mitigation action with an owner and a due date", id="risk-2-no-action"),
    ],
)
def test_submit_refuses_an_incomplete_review(content: ReviewContent, reason: str) -> None:
    with pytest.raises(RefusedError, match="^cannot submit: " + re.escape(reason)):
        fire("draft", "submit", ctx(content, actor="bob", roles=REVIEWER))


def test_submit_lists_every_missing_field_in_one_line() -> None:
    empty = dataclasses.replace(COMPLETE, account_goals=None, goal_summary=" ", overall_assessment=None,
                                next_review_date=None, risks=(), actions=())
    expected = (
        "cannot submit: 5 problems: account_goals is empty; goal_summary is empty; the review has no risk (add one "
        "with `review risk add`); overall_assessment is empty; next_review_date is not set"
    )
    with pytest.raises(RefusedError) as raised:
        fire("draft", "submit", ctx(empty, actor="bob", roles=REVIEWER))
    assert str(raised.value) == expected


def test_submit_accepts_a_next_review_date_of_tomorrow() -> None:
    tomorrow = dataclasses.replace(COMPLETE, next_review_date=TODAY + timedelta(days=1))
    assert fire("draft", "submit", ctx(tomorrow, actor="bob", roles=REVIEWER)) == "submitted"


def test_submit_by_someone_other_than_the_reviewer_is_refused_even_for_a_manager() -> None:
    reason = r"^cannot submit: only the reviewer \(bob\) may submit, not maria$"
    with pytest.raises(RefusedError, match=reason):
        fire("draft", "submit", ctx(actor="maria", roles=MANAGER))


@pytest.mark.parametrize(
    ("context", "reason"),
    [
        pytest.param(ctx(APPROVABLE, actor="olga", roles=frozenset({"ops"}), employee_digest=SIGNED),
                     "only the assigned approver (maria) with the manager or admin role may approve, not olga",
                     id="non-manager"),
        pytest.param(ctx(APPROVABLE, actor="diana", employee_digest=SIGNED),
                     "only the assigned approver (maria) with the manager or admin role may approve, not diana",
                     id="another-manager"),
        pytest.param(ctx(dataclasses.replace(APPROVABLE, reviewer="maria"), actor="maria",
                         employee_digest=employee_digest(dataclasses.replace(APPROVABLE, reviewer="maria"))),
                     "maria is the reviewer and cannot approve their own review", id="four-eyes"),
        pytest.param(ctx(COMPLETE, employee_digest=SIGNED), "manager_comments is empty", id="no-comments"),
        pytest.param(ctx(dataclasses.replace(APPROVABLE, manager_comments="   "), employee_digest=SIGNED),
                     "manager_comments is empty", id="blank-comments"),
        pytest.param(ctx(dataclasses.replace(APPROVABLE, goal_summary="rewritten after signing"),
                         employee_digest=SIGNED),
                     "the review changed after the reviewer signed it", id="changed-after-signing"),
        pytest.param(ctx(dataclasses.replace(APPROVABLE, actions=(dataclasses.replace(
                         COMPLETE.actions[0], status="done"),)), employee_digest=SIGNED),
                     "the review changed after the reviewer signed it", id="action-changed-after-signing"),
    ],
)
def test_approve_guards(context: Context, reason: str) -> None:
    with pytest.raises(RefusedError, match="^cannot approve: " + re.escape(reason)):
        fire("submitted", "approve", context)


def test_approve_by_an_admin_who_is_the_assigned_approver_and_not_the_reviewer() -> None:
    assigned = dataclasses.replace(APPROVABLE, approver="ann")
    assert fire("submitted", "approve", ctx(assigned, actor="ann", roles=frozenset({"admin"}),
                                            employee_digest=SIGNED)) == "approved"


def test_manager_comments_written_after_the_reviewer_signed_do_not_void_the_submission() -> None:
    # The reviewer never signs the manager's comments, so adding them must not look like tampering.
    assert employee_digest(APPROVABLE) == SIGNED
    assert fire("submitted", "approve", ctx(APPROVABLE, employee_digest=SIGNED)) == "approved"


@pytest.mark.parametrize(
    ("event", "state", "context", "reason"),
    [
        pytest.param("reject", "submitted", ctx(comment=None), "a comment is required", id="reject-none"),
        pytest.param("reject", "submitted", ctx(comment="  "), "a comment is required", id="reject-blank"),
        pytest.param("reject", "submitted", ctx(actor="bob", roles=REVIEWER, comment="meh"),
                     "only the assigned approver (maria) with the manager or admin role or the reviewer's manager "
                     "with the manager role may reject, not bob", id="reject-non-manager"),
        pytest.param("reopen", "approved", ctx(actor="bob", roles=REVIEWER),
                     "only the assigned approver (maria) with the manager role", id="reopen-non-manager"),
        pytest.param("reopen", "approved", ctx(actor="pulsecheck", roles=frozenset(), cause="scheduler"),
                     "only the assigned approver (maria) with the manager role", id="reopen-by-scheduler"),
        pytest.param("close", "approved", ctx(actor="olga", roles=frozenset({"ops"})),
                     "only the reviewer (bob), the assigned approver (maria), the reviewer's manager, an admin or the "
                     "scheduler may close, not olga", id="close-stranger"),
        pytest.param("close", "approved", ctx(actor="pulsecheck", roles=frozenset(), cause="rule:x"),
                     "only the reviewer (bob)", id="close-by-rule"),
        pytest.param("close", "approved", ctx(actor="bob", roles=REVIEWER),
                     "the reviewer's signature does not verify", id="close-unsigned"),
        pytest.param("close", "approved", ctx(APPROVABLE, actor="bob", roles=REVIEWER, employee_digest=SIGNED,
                                              manager_digest=manager_digest(COMPLETE)),
                     "the approver's signature does not verify", id="close-manager-signature-broken"),
        pytest.param("reassign", "submitted", ctx(actor="diana", comment="away"),
                     "only the reviewer's manager with the manager role or an admin may reassign, not diana",
                     id="reassign-by-another-manager"),
        pytest.param("reassign", "submitted", ctx(reviewer_manager="maria"), "a comment is required",
                     id="reassign-without-comment"),
        pytest.param("withdraw", "draft", ctx(comment=None), "a comment is required", id="withdraw-none"),
        pytest.param("withdraw", "draft", ctx(actor="bob", roles=REVIEWER, comment="dup"),
                     "only the assigned approver (maria) with the manager role", id="withdraw-non-manager"),
    ],
)
def test_refusals_name_the_reason(event: str, state: str, context: Context, reason: str) -> None:
    with pytest.raises(RefusedError, match=f"^cannot {event}: " + re.escape(reason)):
        fire(state, event, context)


@pytest.mark.parametrize(
    ("event", "state", "context", "expected"),
    [
        pytest.param("reopen", "approved", ctx(actor="pulsecheck", roles=frozenset(), cause="rule:drop"),
                     "draft", id="reopen-by-rule"),
        pytest.param("reopen", "approved", ctx(), "draft", id="reopen-by-manager"),
        pytest.param("close", "approved", ctx(actor="pulsecheck", roles=frozenset(), cause="scheduler", **SIGNATURES),
                     "closed", id="close-by-scheduler"),
        pytest.param("close", "approved", ctx(actor="bob", roles=REVIEWER, **SIGNATURES), "closed",
                     id="close-by-reviewer"),
        pytest.param("close", "approved", ctx(actor="mike", roles=MANAGER, reviewer_manager="mike", **SIGNATURES),
                     "closed", id="close-by-the-reviewers-manager"),
        pytest.param("reassign", "draft", ctx(actor="ann", roles=frozenset({"admin"}), comment="away"), "draft",
                     id="reassign-by-admin"),
        pytest.param("reject", "submitted", ctx(COMPLETE, comment="Add evidence"), "draft",
                     id="reject-needs-no-manager-comments"),
        pytest.param("escalate", "submitted", ctx(ReviewContent("ACME", "bob"), actor="pulsecheck",
                                                  roles=frozenset(), cause="rule:x"),
                     "submitted", id="escalate-by-rule"),
    ],
)
def test_allowed_actors(event: str, state: str, context: Context, expected: str) -> None:
    assert fire(state, event, context) == expected


# --- digests --------------------------------------------------------------------------------------


def test_employee_digest_ignores_manager_comments_and_the_manager_digest_covers_them() -> None:
    commented = dataclasses.replace(COMPLETE, manager_comments="Fine")
    recommented = dataclasses.replace(COMPLETE, manager_comments="Fine, but chase the CFO")
    assert employee_digest(COMPLETE) == employee_digest(commented) == employee_digest(recommented)
    assert len({manager_digest(COMPLETE), manager_digest(commented), manager_digest(recommented)}) == 3


@pytest.mark.parametrize(
    "change",
    [
        {"account_goals": "Expand to 600 seats"},
        {"goal_summary": "on track"},
        {"overall_assessment": "At risk"},
        {"next_review_date": TODAY + timedelta(days=91)},
        {"employee_comments": "I disagree with the score"},
        {"risks": (RiskData(1, "Champion leaving", "LinkedIn post", "customer", "critical"),)},
        {"actions": (ActionData(1, "Build a second champion", 1, "alice", TODAY + timedelta(days=30)),)},
    ],
    ids=lambda change: next(iter(change)),
)
def test_both_digests_cover_the_reviewer_content(change: dict[str, Any]) -> None:
    changed = dataclasses.replace(COMPLETE, **change)
    assert employee_digest(changed) != employee_digest(COMPLETE)
    assert manager_digest(changed) != manager_digest(COMPLETE)


def test_digests_are_stable_sha256_hex() -> None:
    copy = dataclasses.replace(COMPLETE)
    assert employee_digest(copy) == employee_digest(COMPLETE)
    assert len(SIGNED) == 64 and int(SIGNED, 16) >= 0
    assert employee_digest(COMPLETE) != manager_digest(APPROVABLE)


# --- replay ---------------------------------------------------------------------------------------


def test_replay_of_a_full_life_cycle() -> None:
    rows = [("open", None, "draft"), ("submit", "draft", "submitted"), ("reject", "submitted", "draft"),
            ("submit", "draft", "submitted"), ("escalate", "submitted", "submitted"),
            ("approve", "submitted", "approved"), ("close", "approved", "closed")]
    assert replay(rows) == "closed"
    assert replay([]) == NEW


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        pytest.param([("open", None, "draft"), ("approve", "draft", "approved")],
                     "approve cannot go draft -> approved", id="skipped-submit"),
        pytest.param([("open", None, "draft"), ("submit", "submitted", "approved")],
                     "submit from submitted but the review was draft", id="gap"),
        pytest.param([("open", None, "draft"), ("withdraw", "draft", "approved")],
                     "withdraw cannot go draft -> approved", id="wrong-destination"),
        pytest.param([("open", None, "draft"), ("escalate", "draft", "submitted")],
                     "escalate cannot go draft -> submitted", id="escalate-moved"),
    ],
)
def test_replay_refuses_a_broken_audit_trail(rows: list[tuple[str, str | None, str]], message: str) -> None:
    with pytest.raises(RefusedError, match="audit trail broken: " + re.escape(message)):
        replay(rows)


# --- random walks ---------------------------------------------------------------------------------

ACTORS = {
    "bob": REVIEWER,
    "maria": MANAGER,
    "ann": frozenset({"admin"}),
    "olga": frozenset({"ops"}),
    "pulsecheck": frozenset(),
}
CONTENTS = [
    ReviewContent("ACME", "bob"),
    COMPLETE,
    APPROVABLE,
    dataclasses.replace(APPROVABLE, goal_summary="changed after signing"),
    dataclasses.replace(APPROVABLE, reviewer="maria"),
]


class ReviewWalk(RuleBasedStateMachine):
    """Random events by random people on one review: the state stays known and the audit trail explains it."""

    def __init__(self) -> None:
        super().__init__()
        self.state = NEW
        self.rows: list[tuple[str, str | None, str]] = []

    @initialize()
    def open_review(self) -> None:
        self.apply("open", permitted("open"))
        assert self.state == "draft"

    @rule(
        event=st.sampled_from(EVENTS),
        actor=st.sampled_from(sorted(ACTORS)),
        content=st.sampled_from(CONTENTS),
        comment=st.sampled_from([None, "", "  ", "Looks fine"]),
        cause=st.sampled_from(["user", "scheduler", "rule:drop-with-complaints"]),
        signed=st.booleans(),
    )
    def fire_event(self, event: str, actor: str, content: ReviewContent, comment: str | None, cause: str,
                   signed: bool) -> None:
        context = Context(content=content, actor=actor, actor_roles=ACTORS[actor], now=NOW, comment=comment,
                          cause=cause, employee_digest=employee_digest(content) if signed else SIGNED,
                          manager_digest=manager_digest(content) if signed else None, reviewer_manager="maria")
        self.apply(event, context)

    def apply(self, event: str, context: Context) -> None:
        before = self.state
        try:
            after = fire(before, event, context)
        except RefusedError as exc:
            assert str(exc).startswith(f"cannot {event}: ")
            return
        assert TABLE.get((event, before)) == after, f"{event} took {before} to {after}"
        self.rows.append((event, None if before == NEW else before, after))
        self.state = after

    @invariant()
    def state_is_a_review_state(self) -> None:
        assert self.state in STATES

    @invariant()
    def replay_reproduces_the_state(self) -> None:
        assert replay(self.rows) == self.state


ReviewWalk.TestCase.settings = settings(
    max_examples=150, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_random_walks_keep_a_consistent_audit_trail = ReviewWalk.TestCase
