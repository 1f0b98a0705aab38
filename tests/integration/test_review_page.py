"""A page of reviews (`review list`, the web list and API) is checked in a few queries for the whole page: the
same JSON as each review shown alone, tampering found on the review it touched, and as many statements for forty
reviews as for four."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, text

from pulsecheck.app import install_hooks
from pulsecheck.config import load_settings
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Review, User
from pulsecheck.storage.paging import PageRequest
from pulsecheck.workflow import reviews
from tests.conftest import Factory

DUE = timedelta(days=14)


@pytest.fixture
def hooked(database: Database) -> Iterator[Database]:
    """The test's database opened with the CLI's commit hooks (the audit chain among them)."""
    opened = Database(database.url)
    install_hooks(opened, load_settings(db=database.url, env={}))
    yield opened
    opened.dispose()


def open_reviews(factory: Factory, hooked: Database, count: int) -> None:
    """`count` accounts with a review each, every other one filled in and submitted (signed, chained)."""
    factory.team()
    for k in range(count):
        factory.account(f"ACC{k:03d}", owner="bob", manager="maria")
    for k in range(count):
        with hooked.transaction() as session:
            review = reviews.new_review(session, f"ACC{k:03d}", "bob", factory.now, DUE)
        if k % 2:
            factory.complete(review.id)
            with hooked.transaction() as session:
                bob = session.scalars(select(User).where(User.name == "bob")).one()
                reviews.advance(session, review.id, "submit", bob, factory.now)


def page_json(database: Database) -> list[dict[str, Any]]:
    with database.transaction() as session:
        return reviews.review_page(session, PageRequest(), reviews.ReviewFilter()).items


def alone_json(database: Database) -> list[dict[str, Any]]:
    """Each review's JSON as `review show` makes it, one review and one session at a time, newest first."""
    with database.transaction() as session:
        ids = list(session.scalars(select(Review.id).order_by(Review.id.desc())))
    shown = []
    for review_id in ids:
        with database.transaction() as session:
            shown.append(reviews.review_dict(reviews.get_review(session, review_id), with_history=False))
    return shown


def statements(database: Database) -> int:
    counted = []

    def count(*_: Any) -> None:
        counted.append(1)

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        page_json(database)
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    return len(counted)


def test_a_page_is_each_review_as_shown_alone(factory: Factory, hooked: Database) -> None:
    open_reviews(factory, hooked, 6)
    listed = page_json(hooked)
    assert len(listed) == 6 and listed == alone_json(hooked)
    assert all(r["signature_problems"] == [] for r in listed)
    with hooked.transaction() as session:  # behind the hooks' back: content a signature covers, and a chained row
        session.execute(text("UPDATE reviews SET goal_summary = 'changed' WHERE id = 2"))
        session.execute(text("UPDATE reviews SET approver = 'olga' WHERE id = 3"))
    listed = page_json(hooked)
    assert listed == alone_json(hooked)
    problems = {r["id"]: r["signature_problems"] for r in listed}
    assert any("employee signature of bob no longer matches" in p for p in problems[2])
    assert any("differs from its audit chain entry" in p for p in problems[3])
    assert all(found == [] for review_id, found in problems.items() if review_id not in (2, 3))


def test_a_longer_page_costs_no_more_statements(factory: Factory, hooked: Database) -> None:
    open_reviews(factory, hooked, 4)
    few = statements(hooked)
    for k in range(4, 40):
        factory.account(f"ACC{k:03d}", owner="bob", manager="maria")
        with hooked.transaction() as session:
            reviews.new_review(session, f"ACC{k:03d}", "bob", factory.now, DUE)
    assert len(page_json(hooked)) == 40
    assert statements(hooked) == few


def shown_on_core(database: Database) -> list[dict[str, Any]]:
    """Each review as `review show --json` makes it (SQLAlchemy Core, a connection, no session), newest first."""
    from pulsecheck.workflow.reviews.reading import shown

    with database.engine.connect() as connection:
        ids = list(connection.scalars(select(Review.id).order_by(Review.id.desc())))
        return [shown(connection, review_id) for review_id in ids]


def shown_on_objects(database: Database) -> list[dict[str, Any]]:
    """Each review's JSON with its context made of the mapped objects (the web page's and export's way)."""
    with database.transaction() as session:
        ids = list(session.scalars(select(Review.id).order_by(Review.id.desc())))
    shown = []
    for review_id in ids:
        with database.transaction() as session:
            review = reviews.get_review(session, review_id)
            shown.append(reviews.review_dict(review, with_history=False, with_context=True))
    return shown


def test_a_review_shown_on_core_is_the_review_shown_from_its_objects(factory: Factory, hooked: Database) -> None:
    open_reviews(factory, hooked, 4)
    on_core = shown_on_core(hooked)
    assert len(on_core) == 4 and on_core == shown_on_objects(hooked)
    assert all(r["account_context"]["id"] == r["account"] and r["signature_problems"] == [] for r in on_core)
    with hooked.transaction() as session:  # behind the hooks' back, as above
        session.execute(text("UPDATE reviews SET goal_summary = 'changed' WHERE id = 2"))
        session.execute(text("UPDATE review_events SET comment = 'forged' WHERE review_id = 4"))
    on_core = shown_on_core(hooked)
    assert on_core == shown_on_objects(hooked)
    problems = {r["id"]: r["signature_problems"] for r in on_core}
    assert any("employee signature of bob no longer matches" in p for p in problems[2])
    assert any(p.startswith("review_event ") and "differs from its audit chain entry" in p for p in problems[4])
    assert problems[1] == [] and problems[3] == []
