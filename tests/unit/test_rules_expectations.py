"""How `rules test` compares expected actions with those the firing rules ask for (no engine needed): each
expected action takes a distinct asked one of its kind (and rule), whose settings include the expected ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from pulsecheck.rules.expectations import Asked, action_problems, asked
from pulsecheck.rules.fixtures import Expected
from pulsecheck.rules.language import load_rules
from pulsecheck.rules.priority import PriorityMatrix

HIGH = Asked("r", "escalate", {"severity": "high", "due_in": timedelta(days=2), "notify": ("owner",),
                               "reason": "3 tickets", "priority": "P2"})  # fmt: skip
PING = Asked("s", "notify", {"roles": ("ops",), "message": "pile-up"})
ASKED_FOR = [
    "the firing rules ask for:",
    "  r: escalate {severity: 'high', due_in: 2d, notify: ['owner'], reason: '3 tickets', priority: 'P2'}",
    "  s: notify {roles: ['ops'], message: 'pile-up'}",
]

CASES: list[tuple[list[Expected], list[Asked], list[str]]] = [
    ([Expected("escalate"), Expected("notify")], [HIGH, PING], []),
    ([Expected("notify"), Expected("escalate", "r", {"severity": "high", "notify": ["owner"]})], [HIGH, PING], []),
    ([Expected("escalate", None, {"due_in": timedelta(days=2), "priority": "P2"}), Expected("notify")], [HIGH, PING],
     []),
    ([], [], []),
    ([Expected("escalate")], [HIGH, PING], [*ASKED_FOR[:2], ASKED_FOR[2] + "  (not expected)"]),
    ([Expected("escalate", None, {"severity": "critical"}), Expected("notify")], [HIGH, PING],
     ["expected action escalate {severity: 'critical'}: no action matches", ASKED_FOR[0],
      ASKED_FOR[1] + "  (not expected)", ASKED_FOR[2]]),
    ([Expected("notify", "r")], [PING],
     ["expected action r: notify {}: no action matches", ASKED_FOR[0], ASKED_FOR[2] + "  (not expected)"]),
    ([Expected("escalate", None, {"severty": "high"})], [HIGH],  # a misspelled setting never matches
     ["expected action escalate {severty: 'high'}: no action matches", ASKED_FOR[0],
      ASKED_FOR[1] + "  (not expected)"]),
    ([Expected("notify"), Expected("notify")], [PING],
     ["expected action notify {}: no action matches", ASKED_FOR[0], ASKED_FOR[2]]),
    ([Expected("notify")], [], ["expected action notify {}: no action matches", "the firing rules ask for no action"]),
]


@pytest.mark.parametrize(("expected", "done", "problems"), CASES)
def test_action_matching(expected: list[Expected], done: list[Asked], problems: list[str]) -> None:
    assert action_problems(expected, done) == problems


RULE = """\
version: 1
rules:
  - id: r
    description: Tickets pile up
    when: {open_high_tickets_60d: {gt: 2}}
    then:
      escalate: {severity: high, reason: "{open_high_tickets_60d} tickets, renewal in {days_to_renewal} days"}
      notify: {roles: [ops]}
      flag_deviation: {kind: stale_source}
"""


@pytest.mark.parametrize(
    ("facts", "priority"),
    [
        ({"open_high_tickets_60d": 3, "days_to_renewal": 200}, "P2"),  # high: P2
        ({"open_high_tickets_60d": 3, "days_to_renewal": 30}, "P1"),  # renewal within 90 days: one up
        ({"open_high_tickets_60d": 3, "days_to_renewal": 30, "arr": 500_000, "open_complaints": 4}, "P1"),  # capped
    ],
)
def test_texts_are_filled_in_and_priority_comes_from_the_matrix(facts: dict[str, Any], priority: str) -> None:
    (rule,) = load_rules(RULE, "r.yaml").rules
    escalate, notify, flag = asked(rule, facts, PriorityMatrix())
    days = facts["days_to_renewal"]
    assert escalate.params == {"severity": "high", "reason": f"3 tickets, renewal in {days} days",
                               "priority": priority}  # fmt: skip
    assert notify.params == {"roles": ("ops",), "message": "Tickets pile up"}  # the description stands in
    assert flag.params == {"kind": "stale_source", "detail": "Tickets pile up"}
