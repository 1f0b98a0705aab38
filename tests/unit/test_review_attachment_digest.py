"""Review signatures bind attachments when there are some, and only then: a review without attachments keeps the
digest it was signed with before attachments existed (so stored signatures still verify)."""

from __future__ import annotations

import dataclasses
from datetime import date

from pulsecheck.states.review import (
    ActionData,
    AttachmentData,
    ReviewContent,
    RiskData,
    employee_digest,
    manager_digest,
)

CONTENT = ReviewContent(
    account="ACME", reviewer="bob", approver="maria", account_goals="Expand", goal_summary="On track",
    overall_assessment="Healthy", next_review_date=date(2027, 2, 22), employee_comments="Up",
    manager_comments="Agreed", risks=(RiskData(1, "Champion leaving", "LinkedIn", "customer", "high", None),),
    actions=(ActionData(1, "Second champion", 1, "bob", date(2026, 12, 20), None, "open"),),
)
# Computed with the digest functions as they were before attachments (main at 7308bc7), for this CONTENT.
EMPLOYEE_BEFORE = "555b601655feb48521227930814b3630ff3f76bd740230bb70a07899e12dc09d"
MANAGER_BEFORE = "23c1f0a1baa6f54f8f2f09f5f1dff9dc8cffac556c089c13421f4300b1d9183b"
SCORECARD = AttachmentData(1, "scorecard.xlsx", "ab" * 32, "Q4")


def test_a_review_without_attachments_keeps_its_digests() -> None:
    assert (employee_digest(CONTENT), manager_digest(CONTENT)) == (EMPLOYEE_BEFORE, MANAGER_BEFORE)


def test_an_attachment_changes_both_digests_and_so_does_any_change_to_it() -> None:
    attached = dataclasses.replace(CONTENT, attachments=(SCORECARD,))
    assert employee_digest(attached) != EMPLOYEE_BEFORE and manager_digest(attached) != MANAGER_BEFORE
    for change in ({"sha256": "cd" * 32}, {"filename": "other.xlsx"}, {"note": None}, {"number": 2}):
        other = dataclasses.replace(CONTENT, attachments=(dataclasses.replace(SCORECARD, **change),))
        assert employee_digest(other) != employee_digest(attached), change
        assert manager_digest(other) != manager_digest(attached), change
