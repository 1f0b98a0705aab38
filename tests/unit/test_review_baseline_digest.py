"""Review signatures bind the baseline scorecard when the review has one, and only then: a review opened before
reviews carried a scorecard keeps the digests it was signed with (so stored signatures still verify)."""

from __future__ import annotations

import dataclasses
from typing import Any

from pulsecheck.states.review import employee_digest, manager_digest
from tests.unit.test_review_attachment_digest import CONTENT, EMPLOYEE_BEFORE, MANAGER_BEFORE

CARD: dict[str, Any] = {
    "as_of": "2026-11-23T00:00:00+00:00", "model_version": "t1", "score": 67.0, "bucket": "fine",
    "bucket_color": "green", "provisional": False, "groups": [],
    "kpis": [{"kpi": "tickets", "group": "care", "raw": 12.0, "normalized": 40.0, "weight": 40.0,
              "contribution": 16.0, "status": "ok", "rating": "concern", "color": "orange"}],
    "concerns": ["tickets"], "strengths": [],
}  # fmt: skip


def test_a_review_without_a_baseline_keeps_its_digests() -> None:
    assert dataclasses.replace(CONTENT, baseline=None) == CONTENT
    assert (employee_digest(CONTENT), manager_digest(CONTENT)) == (EMPLOYEE_BEFORE, MANAGER_BEFORE)


def test_the_baseline_changes_both_digests_and_so_does_any_change_to_it() -> None:
    carried = dataclasses.replace(CONTENT, baseline=CARD)
    assert employee_digest(carried) != EMPLOYEE_BEFORE and manager_digest(carried) != MANAGER_BEFORE
    kpi = CARD["kpis"][0]
    for change in ({"score": 66.0}, {"concerns": []}, {"kpis": [kpi | {"rating": "neutral"}]},
                   {"kpis": [kpi | {"raw": 13.0}]}):
        other = dataclasses.replace(CONTENT, baseline=CARD | change)
        assert employee_digest(other) != employee_digest(carried), change
        assert manager_digest(other) != manager_digest(carried), change
