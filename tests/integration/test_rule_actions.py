"""What rule actions do to reviews in a real (not dry) evaluate run over the sample portfolio: `open_review` opens
out-of-cycle reviews; `escalate` raises an open review's priority and pulls its due date in (never the other way
round) and reopens an approved review. Expectations come from the sample data and plain queries, not the engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from pulsecheck.demo.story import DEMO_NOW
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import (
    Account,
    Escalation,
    EvaluationRun,
    Notification,
    Review,
    ScoreSnapshot,
)
from pulsecheck.workflow import reviews
from pulsecheck.workflow.evaluation import EvaluationSettings, evaluate
from tests.conftest import Factory, activate_rules

OPEN_REVIEW = """\
version: 1
rules:
  - id: renewal-soon-unhealthy
    description: Renewal within 60 days and the account is unhealthy
    when:
      all:
        - days_to_renewal: {lte: 60, gte: 0}
        - bucket: {in: [unhealthy]}
    then:
      open_review: {priority: P1, due_in: 7d}
"""
WATCH_BIG = """\
version: 1
rules:
  - id: watch-big
    description: An account worth 200k a year or more
    when: {arr: {gte: 200000}}
    then:
      escalate: {severity: medium, priority: P2, due_in: 5d}
"""


def use_rules(database: Database, tmp_path: Path, text: str) -> None:
    """Make `text` the active ruleset (olga, ops)."""
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    activate_rules(database, path, "olga", DEMO_NOW)


def renewing_unhealthy(database: Database) -> list[str]:
    """Accounts renewing within 60 days of DEMO_NOW whose newest snapshot is unhealthy, by plain reading."""
    found = []
    with database.transaction() as session:
        for account in session.scalars(select(Account).order_by(Account.external_id)):
            bucket = session.scalar(select(ScoreSnapshot.bucket).where(ScoreSnapshot.account_id == account.id)
                                    .order_by(ScoreSnapshot.as_of.desc()).limit(1))
            days = (account.renewal_date - DEMO_NOW.date()).days if account.renewal_date else None
            if days is not None and 0 <= days <= 60 and bucket == "unhealthy":
                found.append(account.external_id)
    return found


def review_of(session: Any, account: str) -> Review:
    return session.scalars(select(Review).join(Account).where(Account.external_id == account)).one()


def test_open_review_opens_an_out_of_cycle_review_for_the_owner(rules_portfolio: Database, tmp_path: Path) -> None:
    use_rules(rules_portfolio, tmp_path, OPEN_REVIEW)
    expected = renewing_unhealthy(rules_portfolio)
    assert expected == ["INITECH", "SOYLENT"]  # renewals on 2026-12-20 and 2026-12-31; scores 35.78 and 23.82
    report = evaluate(rules_portfolio, EvaluationSettings(), DEMO_NOW, DEMO_NOW)
    assert sorted(p.account for p in report.actions if p.action == "open_review") == expected
    with rules_portfolio.transaction() as session:
        opened = session.scalars(select(Review).join(Account).order_by(Account.external_id)).all()
        assert [r.account.external_id for r in opened] == expected
        for review in opened:
            owner = review.account.owner
            assert owner is not None
            assert (review.kind, review.state, review.priority, review.due_at) == (
                "rule", "draft", "P1", DEMO_NOW + timedelta(days=7))
            assert (review.reviewer, review.approver) == (owner.name, owner.manager_name)
            assert [(e.event, e.cause) for e in review.events] == [("open", "rule:renewal-soon-unhealthy")]
        told = session.execute(select(Notification.kind, Notification.recipient).order_by(Notification.id)).all()
        assert [tuple(t) for t in told] == [("review_opened", r.reviewer) for r in opened]
        run = session.get(EvaluationRun, report.run_id)
        assert run is not None and (run.status, run.actions) == ("done", 2)
    again = evaluate(rules_portfolio, EvaluationSettings(), DEMO_NOW, DEMO_NOW)
    assert again.firings == report.firings and again.actions == []  # an open review is not opened twice
    with rules_portfolio.transaction() as session:
        assert session.scalar(select(func.count(Review.id))) == 2


def open_review(database: Database, account: str, opened: datetime, due: datetime, priority: str) -> int:
    with database.transaction() as session:
        return reviews.new_review(session, account, "bob", opened, due - opened, priority=priority).id


def test_escalate_raises_priority_pulls_the_due_date_in_and_reopens_an_approved_review(
    rules_portfolio: Database, tmp_path: Path
) -> None:
    """watch-big (P2, due in 5 days) fires for ACME, HOOLI and TYRELL, each with a review already open."""
    earlier = DEMO_NOW - timedelta(days=10)
    low = open_review(rules_portfolio, "ACME", earlier, DEMO_NOW + timedelta(days=20), "P4")
    urgent = open_review(rules_portfolio, "HOOLI", earlier, DEMO_NOW + timedelta(days=2), "P1")
    factory = Factory(rules_portfolio, earlier)
    approved = open_review(rules_portfolio, "TYRELL", earlier, DEMO_NOW + timedelta(days=20), "P3")
    factory.complete(approved)
    factory.fire(approved, "submit", "bob")
    assert factory.fire(approved, "approve", "maria", comment="Agreed") == "approved"
    use_rules(rules_portfolio, tmp_path, WATCH_BIG)

    evaluate(rules_portfolio, EvaluationSettings(), DEMO_NOW, DEMO_NOW)

    pulled_in = DEMO_NOW + timedelta(days=5)
    with rules_portfolio.transaction() as session:
        acme, hooli, tyrell = (session.get(Review, i) for i in (low, urgent, approved))
        assert acme is not None and hooli is not None and tyrell is not None
        assert (acme.state, acme.priority, acme.due_at) == ("draft", "P2", pulled_in)  # raised, pulled in
        # already more urgent and due sooner: neither lowered nor pushed out
        assert (hooli.state, hooli.priority, hooli.due_at) == ("draft", "P1", DEMO_NOW + timedelta(days=2))
        assert (tyrell.state, tyrell.priority, tyrell.due_at) == ("draft", "P2", pulled_in)  # reopened
        assert (tyrell.employee_signed_by, tyrell.manager_signed_by) == (None, None)
        assert [(e.event, e.from_state, e.to_state, e.actor, e.cause) for e in tyrell.events][-2:] == [
            ("reopen", "approved", "draft", reviews.SYSTEM_ACTOR, "rule:watch-big"),
            ("escalate", "draft", "draft", reviews.SYSTEM_ACTOR, "rule:watch-big"),
        ]
        for review in (acme, hooli):
            assert [(e.event, e.cause) for e in review.events] == [("open", "user"), ("escalate", "rule:watch-big")]
        linked = {e.account.external_id: (e.review_id, e.priority, e.due_at) for e in session.scalars(
            select(Escalation))}
        assert linked == {"ACME": (low, "P2", pulled_in), "HOOLI": (urgent, "P2", pulled_in),
                          "TYRELL": (approved, "P2", pulled_in)}
        assert {r.id for r in session.scalars(select(Review))} == {low, urgent, approved}  # nothing new opened
