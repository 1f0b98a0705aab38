"""The review signature digests are the SHA-256 of the template's canonical JSON in its pinned spelling: computed
here the long way (`dataclasses.asdict`, then `jsontext.canonical_digest`, as the digests were first made) for
any template, so that a faster way of making the same text cannot change a stored signature's digest."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulsecheck.jsontext import REVIEW_SIGNATURE, canonical_digest
from pulsecheck.states.review import (
    ActionData,
    AttachmentData,
    ReviewContent,
    RiskData,
    employee_digest,
    manager_digest,
)

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
MAYBE = st.none() | TEXT
DAYS = st.dates(date(1990, 1, 1), date(2100, 12, 31))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
RISKS = st.builds(RiskData, st.integers(1, 9), TEXT, MAYBE, TEXT, TEXT, MAYBE)
ACTIONS = st.builds(ActionData, st.integers(1, 9), TEXT, st.none() | st.integers(1, 9), MAYBE, st.none() | DAYS,
                    MAYBE, TEXT)  # fmt: skip
FILES = st.builds(AttachmentData, st.integers(1, 9), TEXT, st.text("0123456789abcdef", min_size=64, max_size=64),
                  MAYBE)  # fmt: skip
CONTENTS = st.builds(
    ReviewContent,
    account=TEXT, reviewer=TEXT, approver=MAYBE, account_goals=MAYBE, goal_summary=MAYBE, overall_assessment=MAYBE,
    next_review_date=st.none() | DAYS, employee_comments=MAYBE, manager_comments=MAYBE,
    risks=st.lists(RISKS, max_size=3).map(tuple), actions=st.lists(ACTIONS, max_size=3).map(tuple),
    attachments=st.lists(FILES, max_size=2).map(tuple),
    baseline=st.none() | st.dictionaries(TEXT, JSON, max_size=4),
)  # fmt: skip


def the_long_way(content: ReviewContent, *dropped: str) -> str:
    data: dict[str, Any] = dataclasses.asdict(content)
    if not data["attachments"]:
        data.pop("attachments")
    if data["baseline"] is None:
        data.pop("baseline")
    for name in dropped:
        data.pop(name)
    return canonical_digest(data, REVIEW_SIGNATURE)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONTENTS)
def test_both_digests_are_the_canonical_digest_of_the_template(content: ReviewContent) -> None:
    assert employee_digest(content) == the_long_way(content, "manager_comments", "approver")
    assert manager_digest(content) == the_long_way(content, "approver")
