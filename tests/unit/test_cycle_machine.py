"""The review cycle's state machine, its guards, the seven ordered steps, periods, the seal digest and replay."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulsecheck.errors import InputError, RefusedError
from pulsecheck.states.cycle import (
    EVENTS,
    NEW,
    STATES,
    STEPS,
    Context,
    check_step_name,
    cleared_by_redo,
    fire,
    may_work,
    open_steps,
    parse_period,
    replay,
    risk_level,
    seal_digest,
    step_refusal,
    undecided_refusal,
)

ALL_DONE = frozenset(STEPS)
# What may happen, written out independently of the code: (event, from) -> to. Everything else is refused.
TABLE = {
    ("start", NEW): "draft",
    ("submit", "draft"): "submitted",
    ("approve", "submitted"): "approved",
    ("reject", "submitted"): "draft",
    ("close", "approved"): "closed",
}


def ctx(actor: str = "bob", roles: tuple[str, ...] = ("reviewer",), owner: str = "bob",
        steps: frozenset[str] = ALL_DONE, comment: str | None = None) -> Context:
    return Context(owner=owner, actor=actor, actor_roles=frozenset(roles), steps_done=steps, comment=comment)


def permissive(event: str) -> Context:
    """A context every guard of `event` lets through."""
    if event in ("approve", "reject"):
        return ctx("maria", ("manager",), comment="fine")
    return ctx()


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("state", [NEW, *STATES])
def test_the_table(event: str, state: str) -> None:
    expected = TABLE.get((event, state))
    if expected is None:
        with pytest.raises(RefusedError, match=f"cannot {event}: the cycle is {state}"):
            fire(state, event, permissive(event))
    else:
        assert fire(state, event, permissive(event)) == expected


@pytest.mark.parametrize(
    ("state", "event", "context", "reason"),
    [
        (NEW, "start", ctx("olga", ("ops",)), "only a reviewer, a manager or an admin may start, not olga"),
        ("draft", "submit", ctx("alice"), "only the owner (bob) may submit, not alice"),
        ("draft", "submit", ctx(steps=frozenset({"scope", "data"})), "step model is still open (5 of 7"),
        ("draft", "submit", ctx(steps=frozenset()), "step scope is still open (7 of 7"),
        ("submitted", "approve", ctx("alice", ("reviewer",)), "only a manager or an admin may approve, not alice"),
        ("submitted", "approve", ctx("bob", ("reviewer", "manager")), "bob owns the cycle and cannot approve it"),
        ("submitted", "reject", ctx("maria", ("manager",)), "a comment is required (--comment TEXT)"),
        ("submitted", "reject", ctx("maria", ("manager",), comment="  "), "a comment is required"),
        ("submitted", "reject", ctx("alice", comment="no"), "only a manager or an admin may reject, not alice"),
        ("approved", "close", ctx("alice"), "only the owner (bob), a manager or an admin may close, not alice"),
    ],
)
def test_guards_refuse_with_the_reason(state: str, event: str, context: Context, reason: str) -> None:
    with pytest.raises(RefusedError) as refused:
        fire(state, event, context)
    assert str(refused.value).startswith(f"cannot {event}: ")
    assert reason in str(refused.value)


def test_owner_and_managers_may_close_and_admins_approve() -> None:
    assert fire("approved", "close", ctx("bob")) == "closed"
    assert fire("approved", "close", ctx("hank", ("manager",))) == "closed"
    assert fire("submitted", "approve", ctx("root", ("admin",))) == "approved"
    assert fire(NEW, "start", ctx("maria", ("manager",), owner="bob")) == "draft"


def test_only_a_draft_changes_and_only_by_its_owner_or_a_manager() -> None:
    assert may_work("draft", ctx("bob"), "add a finding") is None
    assert may_work("draft", ctx("hank", ("manager",)), "add a finding") is None
    assert may_work("draft", ctx("alice"), "add a finding") == (
        "cannot add a finding: only the owner (bob), a manager or an admin may work, not alice"
    )
    assert may_work("submitted", ctx("bob"), "complete step data") == (
        "cannot complete step data: the cycle is submitted (only a draft changes)"
    )
    assert "approved and sealed" in (may_work("approved", ctx("bob"), "add a finding") or "")
    assert "closed and sealed" in (may_work("closed", ctx("hank", ("manager",)), "add a finding") or "")


# --- steps ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(STEPS)))
def test_each_step_runs_once_its_predecessors_are_done(index: int) -> None:
    step = STEPS[index]
    assert step_refusal(step, STEPS[:index]) is None
    if index:
        for missing in range(index):
            done = [s for s in STEPS[:index] if s != STEPS[missing]]
            reason = step_refusal(step, done)
            assert reason is not None
            assert reason.startswith(f"cannot complete step {step}: step {STEPS[missing]} is still open")


def test_the_seven_steps_are_the_sop_order() -> None:
    assert STEPS == ("scope", "data", "model", "trends", "classify", "escalate", "document")
    assert open_steps({"scope", "model"}) == ["data", "trends", "classify", "escalate", "document"]
    assert open_steps(STEPS) == []


def test_the_first_open_step_is_named_not_the_last() -> None:
    assert step_refusal("document", {"scope"}) == (
        "cannot complete step document: step data is still open "
        "(steps run in order: scope, data, model, trends, classify, escalate, document)"
    )


@pytest.mark.parametrize("name", ["", "Scope", "review", "escalation", "docs"])
def test_unknown_step_is_an_input_error(name: str) -> None:
    with pytest.raises(InputError, match=f"unknown step '{name}': choose from scope, data, model"):
        check_step_name(name)
    with pytest.raises(InputError):
        step_refusal(name, STEPS)


def test_redoing_a_step_clears_the_later_ones_that_were_done() -> None:
    assert cleared_by_redo("data", {"scope", "data", "model", "trends"}) == ["model", "trends"]
    assert cleared_by_redo("document", STEPS) == []
    assert cleared_by_redo("scope", {"scope"}) == []


def test_escalate_guard_names_the_accounts_without_a_decision() -> None:
    assert undecided_refusal(["ACME", "INITECH"], {"ACME", "INITECH", "OTHER"}) is None
    assert undecided_refusal([], set()) is None
    reason = undecided_refusal(["ACME", "INITECH", "SOYLENT"], {"INITECH"})
    assert reason is not None
    assert reason.startswith("cannot complete step escalate: 2 at-risk account(s) have no decision with a named "
                             "owner: ACME, SOYLENT (")
    many = undecided_refusal([f"A{n:02}" for n in range(25)], set())
    assert many is not None and "A09 and 15 more" in many and "A10" not in many


@pytest.mark.parametrize(("priority", "level"), [("P1", "critical"), ("P2", "high"), ("P3", "medium"),
                                                  ("P4", "low")])
def test_risk_level_follows_the_priority(priority: str, level: str) -> None:
    assert risk_level(priority) == level


# --- periods --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2026-11", date(2026, 11, 1), date(2026, 11, 30)),
        ("2028-02", date(2028, 2, 1), date(2028, 2, 29)),
        ("2026-12", date(2026, 12, 1), date(2026, 12, 31)),
        ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31)),
        ("2026-q1", date(2026, 1, 1), date(2026, 3, 31)),
        (" 2026-01 ", date(2026, 1, 1), date(2026, 1, 31)),
    ],
)
def test_periods(text: str, first: date, last: date) -> None:
    assert parse_period(text) == (first, last)


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-1", "26-11", "2026-11-01", "2026-Q5", "november", ""])
def test_bad_periods_are_input_errors_naming_the_value(text: str) -> None:
    with pytest.raises(InputError, match=r"^--period '.*': not a period \(YYYY-MM"):
        parse_period(text)


# --- seal and audit -------------------------------------------------------------------------------------

CONTENT = {
    "cycle": {"period": "2026-11", "owner": "bob", "as_of": datetime(2026, 11, 24, 9, tzinfo=UTC),
              "account_ids": [3, 1, 2]},
    "steps": [{"step": "scope", "result": {"accounts": 3, "by_segment": {"smb": 1, "enterprise": 2}}}],
    "findings": [{"id": 1, "due": date(2026, 12, 15), "detail": "stale feed"}],
}


def test_the_digest_is_sha256_hex_and_ignores_key_order_and_time_zone() -> None:
    digest = seal_digest(CONTENT)
    assert len(digest) == 64 and int(digest, 16) >= 0
    reordered = {k: CONTENT[k] for k in reversed(list(CONTENT))}
    assert seal_digest(reordered) == digest
    other_zone = {**CONTENT, "cycle": {**CONTENT["cycle"],  # type: ignore[dict-item]
                                       "as_of": datetime(2026, 11, 24, 10, tzinfo=timezone(timedelta(hours=1)))}}
    assert seal_digest(other_zone) == digest


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["cycle"].__setitem__("owner", "alice"),
        lambda c: c["cycle"]["account_ids"].append(4),
        lambda c: c["cycle"].__setitem__("account_ids", [1, 2, 3]),  # order is part of the snapshot
        lambda c: c["steps"][0]["result"]["by_segment"].__setitem__("smb", 2),
        lambda c: c["findings"][0].__setitem__("due", date(2026, 12, 16)),
        lambda c: c["findings"].append({"id": 2}),
    ],
)
def test_any_change_changes_the_digest(change: object) -> None:
    import copy

    changed = copy.deepcopy(CONTENT)
    change(changed)  # type: ignore[operator]
    assert seal_digest(changed) != seal_digest(CONTENT)


@given(st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=6))
def test_digest_is_deterministic(content: dict[str, object]) -> None:
    assert seal_digest(content) == seal_digest(dict(reversed(list(content.items()))))


def test_replay_follows_the_audit_trail() -> None:
    trail = [("start", None, "draft"), ("submit", "draft", "submitted"), ("reject", "submitted", "draft"),
             ("submit", "draft", "submitted"), ("approve", "submitted", "approved"), ("close", "approved", "closed")]
    assert replay(trail) == "closed"
    assert replay(trail[:2]) == "submitted"
    assert replay([]) == NEW


@pytest.mark.parametrize(
    "trail",
    [
        [("start", None, "draft"), ("approve", "draft", "approved")],
        [("start", None, "draft"), ("submit", "submitted", "approved")],
        [("submit", None, "submitted")],
        [("start", None, "draft"), ("submit", "draft", "closed")],
        [("start", None, "draft"), ("edit", "draft", "draft")],
    ],
)
def test_replay_refuses_an_impossible_trail(trail: list[tuple[str, str | None, str]]) -> None:
    with pytest.raises(RefusedError, match="audit trail broken"):
        replay(trail)
