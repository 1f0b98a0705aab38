"""Escalation priority: the SOP's matrix of severity × renewal timing × ARR × open issues."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pulsecheck.vocab import PRIORITIES


@dataclass(frozen=True)
class PriorityMatrix:
    """Base priority per severity, raised one level for each aggravating criterion that holds (built from the
    validated `[priority]` settings by the caller: the domain takes plain values)."""

    base: Mapping[str, str] = field(
        default_factory=lambda: {"critical": "P1", "high": "P2", "medium": "P3", "low": "P4"}
    )
    renewal_within_days: int = 90
    arr_at_least: float = 100_000
    open_issues_at_least: int = 3

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
