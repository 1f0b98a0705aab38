"""How a review transition writes (two statements of its own, not a unit-of-work flush), seen from outside: the
rows and the audit chain the CLI's commit hooks make of it, a conflict when the review changed since it was read,
and a review changed earlier in the same transaction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text

from pulsecheck.app import install_hooks
from pulsecheck.config import load_settings
from pulsecheck.errors import ConflictError
from pulsecheck.storage.bulk import fetch_one
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import AuditEntry, Notification, Review, ReviewEvent, SchedulerJob, User
from pulsecheck.workflow import attachments, reviews
from pulsecheck.workflow.audit import verify_chain
from pulsecheck.workflow.reviews import rows
from tests.conftest import Factory


@pytest.fixture
def hooked(database: Database, factory: Any) -> Iterator[Database]:
    """The factory's team and a filled-in draft review of ACME; the same file opened with the CLI's commit hooks
    (jobs, notices, the audit chain)."""
    factory.team()
    factory.complete(factory.review())
    opened = Database(database.url)
    install_hooks(opened, load_settings(db=database.url, env={}))
    yield opened
    opened.dispose()


def fire(database: Database, review_id: int, event: str, actor: str, now: Any, comment: str | None = None) -> str:
    with database.transaction() as session:
        user = session.scalars(select(User).where(User.name == actor)).one()
        return reviews.transition(session, review_id, event, user, now, comment=comment).state


def chain_kinds(database: Database) -> list[tuple[str, int]]:
    with database.transaction() as session:
        return [(kind, record_id) for kind, record_id in session.execute(
            select(AuditEntry.kind, AuditEntry.record_id).order_by(AuditEntry.seq))]


def test_each_transition_writes_its_row_its_chain_entries_job_and_notice(hooked: Database, factory: Any) -> None:
    database, now = hooked, factory.now
    with database.transaction() as session:
        review_id = session.scalars(select(Review.id)).one()
    entries_before = len(chain_kinds(database))
    steps = [("submit", "bob", None), ("reject", "maria", "more detail"), ("submit", "bob", None),
             ("approve", "maria", "ok"), ("close", "maria", None)]
    states = [fire(database, review_id, event, actor, now, comment) for event, actor, comment in steps]
    assert states == ["submitted", "draft", "submitted", "approved", "closed"]

    with database.transaction() as session:
        events = session.execute(select(ReviewEvent.id, ReviewEvent.event, ReviewEvent.from_state,
                                        ReviewEvent.to_state, ReviewEvent.actor, ReviewEvent.comment)
                                 .where(ReviewEvent.review_id == review_id).order_by(ReviewEvent.id)).all()
        review = session.get(Review, review_id)
        assert review is not None
        # open (by the factory) then the five steps
        assert [row[1:] for row in events] == [
            ("open", None, "draft", "bob", None),
            ("submit", "draft", "submitted", "bob", None),
            ("reject", "submitted", "draft", "maria", "more detail"),
            ("submit", "draft", "submitted", "bob", None),
            ("approve", "submitted", "approved", "maria", "ok"),
            ("close", "approved", "closed", "maria", None),
        ]
        assert review.manager_comments == "ok" and review.manager_signed_by == "maria"
        assert review.employee_signed_by == "bob" and review.employee_digest is not None
        # one notice per submit (to maria), reject and approve (to bob); dedupe keys name the audit rows
        keys = list(session.scalars(select(Notification.dedupe_key).where(Notification.dedupe_key.startswith(
            "review-event:"))))
        heard = sorted({key.rsplit(":", 1)[0] for key in keys})  # one per channel: the same event and person
        assert heard == sorted(f"review-event:{events[i][0]}:{who}" for i, who in ((1, "maria"), (2, "bob"),
                                                                                     (3, "maria"), (4, "bob")))
        # closed: no reminder job left; its account's next review is scheduled
        jobs = set(session.scalars(select(SchedulerJob.id)))
        assert f"review-due:{review_id}" not in jobs and f"next-review:{review.account_id}" in jobs
        assert verify_chain(session).problems == []

    # each step chains its audit row, then the review (in the chain's kind order), in the order they happened
    added = chain_kinds(database)[entries_before:]
    expected = [pair for row in events[1:] for pair in (("review_event", row[0]), ("review", review_id))]
    assert added == expected


def test_closing_a_review_and_opening_the_next_in_one_transaction_leaves_no_next_review_job(
    hooked: Database, factory: Any
) -> None:
    database, now = hooked, factory.now
    with database.transaction() as session:
        review_id, account_id = session.execute(select(Review.id, Review.account_id)).one()
    for event, actor, comment in (("submit", "bob", None), ("approve", "maria", "ok")):
        fire(database, review_id, event, actor, now, comment)
    with database.transaction() as session:
        assert f"next-review:{account_id}" in set(session.scalars(select(SchedulerJob.id)))
        maria = session.scalars(select(User).where(User.name == "maria")).one()
        reviews.transition(session, review_id, "close", maria, now)
        opened = reviews.new_review(session, "ACME", "bob", now, timedelta(days=14)).id

    with database.transaction() as session:
        jobs = set(session.scalars(select(SchedulerJob.id)))
    # the account has an open review again: no next review to open, and the new one has its reminders
    assert f"next-review:{account_id}" not in jobs and f"review-due:{opened}" in jobs
    assert f"review-due:{review_id}" not in jobs


def test_a_review_changed_since_it_was_read_is_a_conflict_and_nothing_is_written(hooked: Database,
                                                                                factory: Any) -> None:
    database, now = hooked, factory.now
    with database.transaction() as session:
        review_id = session.scalars(select(Review.id)).one()
    fire(database, review_id, "submit", "bob", now)
    entries_before = len(chain_kinds(database))

    with pytest.raises(ConflictError, match="nothing was saved"):
        with database.transaction() as session:
            stale = session.get(Review, review_id)  # maria's page, loaded while it was submitted
            assert stale is not None and stale.state == "submitted"
            fire(database, review_id, "approve", "maria", now, "ok")  # someone else approves first
            maria = session.scalars(select(User).where(User.name == "maria")).one()
            reviews.transition(session, review_id, "reject", maria, now, comment="too late")

    with database.transaction() as session:
        events = list(session.scalars(select(ReviewEvent.event).where(ReviewEvent.review_id == review_id)
                                      .order_by(ReviewEvent.id)))
        assert events == ["open", "submit", "approve"]
        assert session.scalar(select(Review.state).where(Review.id == review_id)) == "approved"
        assert verify_chain(session).problems == []
    assert len(chain_kinds(database)) == entries_before + 2  # the approve's two entries, nothing of the reject


def test_a_review_changed_earlier_in_the_transaction_moves_with_that_change(hooked: Database,
                                                                          factory: Any) -> None:
    database, now = hooked, factory.now
    with database.transaction() as session:
        review_id = session.scalars(select(Review.id)).one()
        bob = session.scalars(select(User).where(User.name == "bob")).one()
        review = session.get(Review, review_id)
        assert review is not None
        with session.no_autoflush:
            review.priority = "P1"  # not flushed yet when the transition reads the review
            assert reviews.transition(session, review_id, "submit", bob, now).state == "submitted"

    with database.transaction() as session:
        assert session.execute(select(Review.state, Review.priority).where(Review.id == review_id)).one() == (
            "submitted", "P1")
        count = session.scalar(select(func.count()).select_from(ReviewEvent).where(ReviewEvent.review_id == review_id))
        assert count == 2
        assert verify_chain(session).problems == []


REACHED = {"submit": "submitted", "reject": "draft", "approve": "approved", "close": "closed"}


def test_a_review_moves_alike_whether_or_not_its_session_loaded_it(templates: Any, tmp_path: Any, now: Any) -> None:
    """The rows a transition reads and writes as rows (a review its session has not loaded), the ones `advance`
    writes so (the CLI's: only the new state back, no object made of the review) and the ones it writes from a
    loaded review (the web API loads it first) are the same, byte for byte: the reviews, their audit rows and chain
    entries, jobs and notices, for a review with two risks, their actions and an attachment."""
    from pulsecheck.workflow.attachments import Upload

    settings = load_settings(db=f"sqlite:///{tmp_path / 'x.db'}", env={})
    steps = [("submit", "bob", None), ("reject", "maria", "more detail"), ("submit", "bob", None),
             ("approve", "maria", "ok"), ("close", "maria", None)]
    dumps = []
    for name, load_first, keep in (("rows.db", False, True), ("advance.db", False, False), ("loaded.db", True, True)):
        database = templates.copy(templates.schema(), tmp_path / name)
        install_hooks(database, settings)
        factory = Factory(database, now)
        factory.team()
        review_id = factory.review()
        factory.complete(review_id)
        with database.transaction() as session:
            bob = session.scalars(select(User).where(User.name == "bob")).one()
            reviews.add_risk(session, review_id, bob, now, "Budget freeze — CFO ✓", severity="critical")
            reviews.add_action(session, review_id, bob, now, 2, "Meet the CFO", "bob", (now + timedelta(days=9)).date())
            reviews.attach_file(session, review_id, Upload("qbr.txt", "Ünïcode deck\n".encode()), bob, now, "QBR")
        for event, actor, comment in steps:
            with database.transaction() as session:
                user = session.scalars(select(User).where(User.name == actor)).one()
                loaded = session.get(Review, review_id) if load_first else None  # held: the session keeps it
                if not keep:
                    assert reviews.advance(session, review_id, event, user, now, comment=comment) == REACHED[event]
                    assert not any(isinstance(obj, Review) for obj in session.identity_map.values())
                    continue
                moved = reviews.transition(session, review_id, event, user, now, comment=comment)
                assert moved is loaded if load_first else moved.state == REACHED[event]
        with database.transaction() as session:
            tables = ("reviews", "review_events", "audit_chain", "apscheduler_jobs", "notifications")
            dumps.append({table: session.execute(text(f"SELECT * FROM {table} ORDER BY 1")).all() for table in tables})
            assert verify_chain(session).problems == []
        database.dispose()
    assert dumps[0] == dumps[1] == dumps[2]
    assert [row.event for row in dumps[0]["review_events"]][-5:] == [event for event, _, _ in steps]


def test_the_notice_goes_to_the_address_a_user_has_when_the_transaction_commits(hooked: Database,
                                                                                 factory: Any) -> None:
    """The transition reads its approver's row; the same transaction then changes her email: the notice carries
    the new one, as it did when the notice read its people at commit."""
    database, now = hooked, factory.now
    with database.transaction() as session:
        review_id = session.scalars(select(Review.id)).one()
        bob = session.scalars(select(User).where(User.name == "bob")).one()
        reviews.transition(session, review_id, "submit", bob, now)
        maria = session.scalars(select(User).where(User.name == "maria")).one()
        maria.email = "maria@new.example.com"
    with database.transaction() as session:
        payloads = list(session.scalars(select(Notification.payload).where(
            Notification.recipient == "maria", Notification.dedupe_key.startswith("review-event:"))))
    assert payloads and {payload["email"] for payload in payloads} == {"maria@new.example.com"}


def _maria_app(factory: Any) -> Any:
    """The factory's team with an admin for this login, and an App acting as maria (`--as maria`) over several
    transactions, as a bench or a command that commits more than once."""
    from pulsecheck.app import App, os_login
    from pulsecheck.workflow.users import add_user

    factory.team()
    with factory.database.transaction() as session:
        add_user(session, "root", ["admin"], factory.now, login=os_login())
    settings = load_settings(db=factory.database.url, user="maria", env={"PULSECHECK_NOW": factory.now.isoformat()})
    return App(settings, "review")


def test_an_app_reads_its_actor_again_once_a_user_was_written(tmp_path: Any, factory: Any) -> None:
    """One App over several transactions (a bench, or a command that commits more than once) acts with the
    acting user's roles as they are: a change of them in between is seen by the next transaction."""
    app = _maria_app(factory)
    with app.transaction() as session:
        assert app.actor(session).role_set == {"manager"}
    with app.transaction() as session:
        assert app.actor(session).role_set == {"manager"}  # attached from the row read before
        app.actor(session).roles = "manager,ops"
    with app.transaction() as session:
        assert app.actor(session).role_set == {"manager", "ops"}
    app.db.dispose()


def test_who_acts_is_the_acting_users_name_and_roles_as_they_are_now(tmp_path: Any, factory: Any) -> None:
    """`App.who` (what a review command acts as) gives the user's name and roles without attaching the user to
    the transaction, yet as they are: changed in the same transaction or in an earlier one of the command."""
    app = _maria_app(factory)
    with app.transaction() as session:
        assert app.who(session)[:2] == ("maria", frozenset({"manager"}))  # read: the first transaction's
    with app.transaction() as session:
        assert app.who(session)[:2] == ("maria", frozenset({"manager"}))
        assert not [obj for obj in session.identity_map.values() if isinstance(obj, User)]  # nothing attached
        app.actor(session).roles = "manager,ops"  # changed in this transaction: seen at once
        assert app.who(session).roles == frozenset({"manager", "ops"})
    with app.transaction() as session:
        assert app.who(session).roles == frozenset({"manager", "ops"})
    app.db.dispose()


def test_transitions_write_their_rows_chain_jobs_and_notices_on_postgresql(pg_database: Database, now: Any) -> None:
    """The CLI's path on PostgreSQL (where the chain's head is read under its advisory lock at commit): the five
    steps move the review, chain each audit row then the review, and leave a valid chain, jobs and notices."""
    install_hooks(pg_database, load_settings(db=pg_database.url, env={}))
    factory = Factory(pg_database, now)
    factory.team()
    review_id = factory.review()
    factory.complete(review_id)
    entries_before = len(chain_kinds(pg_database))
    steps = [("submit", "bob", None), ("reject", "maria", "more detail"), ("submit", "bob", None),
             ("approve", "maria", "ok"), ("close", "maria", None)]
    assert [fire(pg_database, review_id, event, actor, now, comment) for event, actor, comment in steps] == [
        "submitted", "draft", "submitted", "approved", "closed"]
    with pg_database.transaction() as session:
        events = session.execute(select(ReviewEvent.id, ReviewEvent.event).where(ReviewEvent.review_id == review_id)
                                 .order_by(ReviewEvent.id)).all()
        keys = set(session.scalars(select(Notification.dedupe_key)))
        heard = {key.rsplit(":", 1)[0] for key in keys if key.startswith("review-event:")}
        assert heard == {f"review-event:{events[i][0]}:{who}" for i, who in ((1, "maria"), (2, "bob"),
                                                                              (3, "maria"), (4, "bob"))}
        jobs = set(session.scalars(select(SchedulerJob.id)))
        assert f"review-due:{review_id}" not in jobs
        assert verify_chain(session).problems == []
    added = chain_kinds(pg_database)[entries_before:]
    assert added == [pair for row in events[1:] for pair in (("review_event", row[0]), ("review", review_id))]


def test_the_moved_review_is_persistent_in_its_session_and_loads_what_it_does_not_hold(
    hooked: Database, factory: Any
) -> None:
    database, now = hooked, factory.now
    with database.transaction() as session:
        review_id = session.scalars(select(Review.id)).one()
    with database.transaction() as session:
        bob = session.scalars(select(User).where(User.name == "bob")).one()
        moved = reviews.transition(session, review_id, "submit", bob, now)
        state = inspect(moved)
        assert state.persistent and session.get(Review, review_id) is moved and not session.dirty
        assert moved.account.external_id == "ACME" and [e.event for e in moved.events] == ["open", "submit"]
        moved.priority = "P1"  # a later change of it in the same transaction is flushed, its version checked
    with database.transaction() as session:
        review = session.get(Review, review_id)
        assert review is not None and (review.state, review.priority) == ("submitted", "P1")


def test_a_transition_reads_its_review_with_the_values_sqlalchemy_reads(database: Database, factory: Any) -> None:
    """A transition reads its review past SQLAlchemy's result on SQLite (`bulk.fetch_one`): every value (aware
    timestamps, dates, the JSON baseline and records) is what SQLAlchemy's own read gives, or signatures made
    from them would not match the review's."""
    factory.team()
    review_id = factory.review()
    factory.complete(review_id)
    factory.fire(review_id, "submit", "bob")
    params = {"review_id": review_id, "record_kind": attachments.REVIEW}
    with database.transaction() as session:
        connection = session.connection()
        ours = fetch_one(connection, rows._REVIEW, params)
        theirs = connection.execute(rows._REVIEW, params).first()
        missing = fetch_one(connection, rows._REVIEW, params | {"review_id": review_id + 1})
    assert theirs is not None and ours is not None and missing is None
    assert tuple(ours) == tuple(theirs)
    values = dict(zip(rows._REVIEW.selected_columns.keys(), ours, strict=True))
    assert values["employee_signed_at"] == factory.now and values["employee_signed_at"].tzinfo is not None
    assert values["next_review_date"] == (factory.now + timedelta(days=90)).date()
    assert [record[0] for record in ours[-1]] == [0, 1]  # the template's one risk and one action
