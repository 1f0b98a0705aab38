"""The priority score and the P1 cap, against values computed by hand from the documented points."""

from __future__ import annotations

from typing import Any

import pytest

from pulsecheck.rules.priority import cap_p1, priority_score

# severity points: critical 40, high 30, medium 20, low 10; renewal 20 × (1 − days/180) within 0..180 days;
# ARR 15 × min(arr / 1M, 1); 3 per open complaint/billing issue/blocker up to 5; 10 × min(drop / 30, 1)
CASES: list[tuple[str, dict[str, Any], float]] = [
    ("high", {}, 30.0),
    ("low", {"days_to_renewal": None, "arr": None}, 10.0),
    ("critical", {"days_to_renewal": 0}, 60.0),  # 40 + 20
    ("high", {"days_to_renewal": 90}, 40.0),  # 30 + 20 × 0.5
    ("high", {"days_to_renewal": 181}, 30.0),  # beyond the horizon
    ("high", {"days_to_renewal": -3}, 30.0),  # renewal passed: nothing to gain by hurrying
    ("medium", {"arr": 250_000}, 23.75),  # 20 + 15 × 0.25
    ("medium", {"arr": 5_000_000}, 35.0),  # capped at 15
    ("low", {"open_complaints": 1, "open_billing_issues": 1, "open_blockers": 1}, 19.0),  # 10 + 9
    ("low", {"open_complaints": 9}, 25.0),  # 5 issues at most
    ("high", {"score_drop_30d": 15.0}, 35.0),  # 30 + 10 × 0.5
    ("high", {"score_drop_30d": 4.0, "score_drop_90d": 45.0}, 40.0),  # the largest drop, capped
    ("high", {"score_drop_30d": -5.0}, 30.0),  # a rise is no drop
]


@pytest.mark.parametrize(("severity", "facts", "expected"), CASES)
def test_priority_score(severity: str, facts: dict[str, Any], expected: float) -> None:
    assert priority_score(severity, facts) == expected


def test_priority_score_adds_every_criterion() -> None:
    facts = {"days_to_renewal": 45, "arr": 120_000, "open_complaints": 2, "score_drop_30d": 16.79}
    assert priority_score("critical", facts) == 68.4  # 40 + 15 + 1.8 + 6 + 5.5967, rounded to 2 places


CAP_CASES: list[tuple[list[tuple[str, float]], float, list[str]]] = [
    ([], 0.1, []),
    ([("P1", 50.0)], 0.1, ["P1"]),  # ceil(0.1 × 1) = 1
    # 20 escalations at 10 %: 2 P1s, the two highest scores of the four
    ([("P1", s) for s in (10.0, 40.0, 30.0, 20.0)] + [("P3", 1.0)] * 16, 0.1, ["P2", "P1", "P1", "P2"] + ["P3"] * 16),
    ([("P1", 60.0), ("P1", 60.0), ("P2", 10.0)], 0.2, ["P1", "P2", "P2"]),  # a tie: the earlier one
    ([("P1", 60.0), ("P1", 70.0)], 0.0, ["P2", "P2"]),
    ([("P1", 60.0), ("P1", 70.0)], 1.0, ["P1", "P1"]),
]


@pytest.mark.parametrize(("items", "share", "expected"), CAP_CASES)
def test_p1_share_keeps_the_highest_scores(items: list[tuple[str, float]], share: float, expected: list[str]) -> None:
    assert cap_p1(items, share) == expected


def test_p1_cap_counts_every_escalation_of_the_run() -> None:
    # 3 escalations, share 0.34: ceil(1.02) = 2 may be P1; both P1s keep it, the P2 stays P2
    assert cap_p1([("P1", 50.0), ("P1", 70.0), ("P2", 90.0)], 0.34) == ["P1", "P1", "P2"]
    # share 0.3: ceil(0.9) = 1: the higher score keeps P1
    assert cap_p1([("P1", 50.0), ("P1", 70.0), ("P2", 90.0)], 0.3) == ["P2", "P1", "P2"]
