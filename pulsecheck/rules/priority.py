"""Escalation priority: the SOP's matrix of severity × renewal timing × ARR × open issues, and a score that orders
escalations within a priority and caps the share of P1."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulsecheck.vocab import PRIORITIES, Priority, Severity

# Each severity's priority before the aggravating criteria.
DEFAULT_BASE: dict[Severity, Priority] = {"critical": "P1", "high": "P2", "medium": "P3", "low": "P4"}


@dataclass(frozen=True)
class PriorityMatrix:
    """Base priority per severity, raised one level for each aggravating criterion that holds (built from the
    validated `[priority]` settings by the caller: the domain takes plain values)."""

    base: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_BASE.items()))
    renewal_within_days: int = 90
    arr_at_least: float = 100_000
    open_issues_at_least: int = 3

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> PriorityMatrix:
        """The matrix of a `[priority]` section's values (validated): a key not set keeps its default, and so does
        each severity `base` does not name."""
        base = {**DEFAULT_BASE, **values.get("base", {})}
        chosen = {key: values[key] for key in ("renewal_within_days", "arr_at_least", "open_issues_at_least")
                  if key in values}
        return cls(base, **chosen)

    def reasons(self, facts: Mapping[str, Any]) -> list[str]:
        """The aggravating criteria that hold for an account's facts."""
        found = []
        days = facts.get("days_to_renewal")
        if days is not None and 0 <= days <= self.renewal_within_days:
            found.append(f"renewal in {days} days")
        arr = facts.get("arr")
        if arr is not None and arr >= self.arr_at_least:
            found.append(f"ARR {arr:,.0f}")
        issues = sum(facts.get(k) or 0 for k in ("open_complaints", "open_billing_issues", "open_blockers"))
        if issues >= self.open_issues_at_least:
            found.append(f"{issues} open issues")
        return found

    def priority(self, severity: str, facts: Mapping[str, Any]) -> str:
        """P1 (most urgent) .. P4: the severity's base, one level up per criterion that holds."""
        index = PRIORITIES.index(self.base.get(severity, "P3")) - len(self.reasons(facts))
        return PRIORITIES[max(0, index)]


# Points of the priority score (0..100): severity, renewal closeness, ARR, open issues, score drop.
SEVERITY_POINTS = {"critical": 40.0, "high": 30.0, "medium": 20.0, "low": 10.0}
RENEWAL_POINTS, RENEWAL_HORIZON = 20.0, 180  # full points at renewal today, none from 180 days out
ARR_POINTS, ARR_FULL = 15.0, 1_000_000.0  # linear up to 1M
ISSUE_POINTS, ISSUES_FULL = 3.0, 5  # per open complaint, billing issue or blocker, up to 5
DROP_POINTS, DROP_FULL = 10.0, 30.0  # linear in the largest score drop, up to 30 points of score


def priority_score(severity: str, facts: Mapping[str, Any]) -> float:
    """How urgent an escalation is, 0..100 (higher first): orders escalations that share a priority and decides
    which ones keep P1 when their share is capped. Missing facts add nothing."""
    score = SEVERITY_POINTS.get(severity, SEVERITY_POINTS["medium"])
    days = facts.get("days_to_renewal")
    if days is not None and 0 <= days <= RENEWAL_HORIZON:
        score += RENEWAL_POINTS * (1 - days / RENEWAL_HORIZON)
    arr = facts.get("arr")
    if arr is not None and arr > 0:
        score += ARR_POINTS * min(float(arr) / ARR_FULL, 1.0)
    issues = sum(facts.get(k) or 0 for k in ("open_complaints", "open_billing_issues", "open_blockers"))
    score += ISSUE_POINTS * min(issues, ISSUES_FULL)
    drops = [v for k, v in facts.items() if k.startswith("score_drop_") and isinstance(v, int | float)]
    if drops and max(drops) > 0:
        score += DROP_POINTS * min(max(drops) / DROP_FULL, 1.0)
    return round(score, 2)


def cap_p1(items: Sequence[tuple[str, float]], share: float) -> list[str]:
    """The priorities of (priority, score) items with at most ceil(share × len) left at P1: the P1s of highest
    score keep it (earlier first on equal scores), the others become P2."""
    allowed = math.ceil(share * len(items) - 1e-9)
    ones = sorted((i for i, (p, _) in enumerate(items) if p == "P1"), key=lambda i: -items[i][1])
    kept = set(ones[:allowed])
    return [p if p != "P1" or i in kept else "P2" for i, (p, _) in enumerate(items)]
