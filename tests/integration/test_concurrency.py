"""Two people act on one review at once, in two real processes: one wins, the other gets a conflict."""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, text

from pulsecheck.errors import ConflictError
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, ReviewEvent, User
from pulsecheck.workflow import reviews
from pulsecheck.workflow.review_form import parse_form
from pulsecheck.workflow.users import add_user

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
BARRIER_TIMEOUT = 20.0


def act_at_the_same_time(url: str, review_id: int, actor: str, event: str, comment: str | None,
                         barrier: Any, results: Any) -> None:
    """Child process: load the review, wait until the other process has loaded it too, then write."""
    database = Database(url)
    waited: list[bool] = []

    def wait_for_the_other(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # before the first write statement, however the service writes (a flush or its own statements); later
        # writes of this command go straight on
        if not waited and statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            waited.append(True)
            barrier.wait(timeout=BARRIER_TIMEOUT)

    sa_event.listen(database.engine, "before_cursor_execute", wait_for_the_other)
    try:
        with database.transaction() as session:
            user = session.scalar(select(User).where(User.name == actor))
            state = reviews.transition(session, review_id, event, user, NOW, comment=comment).state
        results.put((actor, event, "ok", state))
    except ConflictError as exc:
        results.put((actor, event, "conflict", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test with it
        results.put((actor, event, "error", f"{type(exc).__name__}: {exc}"))
    finally:
        database.dispose()


def submitted_review(database: Database) -> int:
    """maria and mike (managers), bob (reviewer, reporting to mike) with a submitted review of ACME that maria
    approves: the two who may decide it."""
    with database.transaction() as session:
        add_user(session, "maria", ["manager"], NOW)
        add_user(session, "mike", ["manager"], NOW)
        bob = add_user(session, "bob", ["reviewer"], NOW, manager="mike")
        session.add(Account(external_id="ACME", name="Acme Corp", owner=bob))
    with database.transaction() as session:
        review_id = reviews.new_review(session, "ACME", "bob", NOW, timedelta(days=14), approver="maria").id
    form = parse_form({
        "account_goals": "Expand to 500 seats", "goal_summary": "320 seats", "overall_assessment": "Healthy",
        "next_review_date": date(2027, 2, 22),
        "risks": [{"description": "Champion leaving",
                   "actions": [{"description": "Second champion", "owner": "bob",
                                "due_date": date(2026, 12, 20)}]}],
    }, "test")
    with database.transaction() as session:
        bob = session.scalar(select(User).where(User.name == "bob"))
        assert bob is not None
        reviews.fill(session, review_id, form, bob, NOW)
        reviews.transition(session, review_id, "submit", bob, NOW)
    return review_id


def audit_rows(database: Database, review_id: int) -> list[tuple[str, str, str | None]]:
    with database.transaction() as session:
        rows = session.scalars(select(ReviewEvent).where(ReviewEvent.review_id == review_id)
                               .order_by(ReviewEvent.id))
        return [(e.event, e.actor, e.comment) for e in rows]


@pytest.fixture(params=[
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
])
def url(request: pytest.FixtureRequest) -> str:
    """A migrated SQLite file or PostgreSQL schema (skipped when the server is unreachable)."""
    database: Database = request.getfixturevalue("database" if request.param == "sqlite" else "pg_database")
    return database.url


ATTEMPTS = {
    "both-approve": [("maria", "approve", "Agreed"), ("maria", "approve", "Agreed")],  # two terminals, one winner
    "approve-vs-reject": [("maria", "approve", "Agreed"), ("mike", "reject", "Risks are vague")],
}


@pytest.mark.parametrize("scenario", sorted(ATTEMPTS))
def test_two_processes_one_review_exactly_one_wins(url: str, scenario: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    database = Database(url)
    try:
        review_id = submitted_review(database)
        before = audit_rows(database, review_id)

        # spawn re-imports this module by name in each child: make the rootdir importable there
        monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
        monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(2)
        results = context.Queue()
        children = [
            context.Process(target=act_at_the_same_time,
                            args=(url, review_id, actor, event, comment, barrier, results))
            for actor, event, comment in ATTEMPTS[scenario]
        ]
        for child in children:
            child.start()
        outcomes = []
        for _ in children:
            try:
                outcomes.append(results.get(timeout=60))
            except queue.Empty:
                break
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.terminate()
                child.join()
        assert len(outcomes) == 2, f"a child did not report: {outcomes}"
        assert not [o for o in outcomes if o[2] == "error"], outcomes

        winners = [o for o in outcomes if o[2] == "ok"]
        losers = [o for o in outcomes if o[2] == "conflict"]
        assert len(winners) == 1 and len(losers) == 1, outcomes
        assert "nothing was saved" in losers[0][3]
        winner, event, _, state = winners[0]
        assert state == {"approve": "approved", "reject": "draft"}[event]

        after = audit_rows(database, review_id)
        comment = next(c for a, _, c in ATTEMPTS[scenario] if a == winner)
        assert after == [*before, (event, winner, comment)]
        with database.transaction() as session:
            review = reviews.get_review(session, review_id)
            assert review.state == state
            assert reviews.replayed_state(review) == state
            if event == "approve":
                assert (review.manager_signed_by, review.manager_comments) == (winner, comment)
            else:
                assert review.manager_signed_by is None and review.manager_comments is None
    finally:
        database.dispose()



def _seed_account(database: Database) -> None:
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    with database.transaction() as session:
        add_user(session, "maria", ["manager"], now)
        add_user(session, "bob", ["reviewer"], now, manager="maria")
    with database.transaction() as session:
        bob = session.scalars(select(User).where(User.name == "bob")).one()
        session.add(Account(external_id="ACME", name="Acme", owner=bob))


def test_the_database_refuses_a_second_open_review_of_an_account(database: Database):
    """Even code that skips the service's check cannot store two reviews that are not closed."""
    from pulsecheck.storage.models import Review

    _seed_account(database)
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    with database.transaction() as session:
        first = reviews.new_review(session, "ACME", "bob", now, timedelta(days=14)).id
    with pytest.raises(ConflictError, match="opened a review of this account at the same time"):
        with database.transaction() as session:
            session.add(Review(account_id=1, state="draft", reviewer="bob", created_at=now, updated_at=now))
    with database.transaction() as session:  # a closed one does not count
        maria = session.scalars(select(User).where(User.name == "maria")).one()
        reviews.transition(session, first, "withdraw", maria, now, comment="opened by mistake")
    with database.transaction() as session:
        assert reviews.new_review(session, "ACME", "bob", now, timedelta(days=14)).id != first


def lock_waiter(database: Database, pid: int, timeout: float = 30.0) -> bool:
    """True once backend `pid` waits on a lock (pg_stat_activity), False if it does not within `timeout`."""
    deadline = time.monotonic() + timeout
    with database.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                                   {"pid": pid}).scalar()
            conn.rollback()  # a fresh snapshot of pg_stat_activity on each read
            if waiting == "Lock":
                return True
            time.sleep(0.01)
    return False


@pytest.mark.postgres
def test_two_sessions_opening_a_review_at_once_on_postgres_one_wins(pg_database: Database):
    """The second session is seen blocked on the first's uncommitted row (not merely slow) before the first
    commits: its own check could not see the first review, so only the unique index stops it."""
    _seed_account(pg_database)
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    first = pg_database.sessions()
    first.begin()
    reviews.new_review(first, "ACME", "bob", now, timedelta(days=14))  # inserted, not committed yet
    first.flush()
    outcome: list[str] = []
    pids: queue.Queue[int] = queue.Queue()

    def second() -> None:
        try:
            with pg_database.transaction() as session:
                pids.put(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
                reviews.new_review(session, "ACME", "bob", now, timedelta(days=14))
            outcome.append("saved")
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
            outcome.append(str(exc))

    racer = threading.Thread(target=second)
    racer.start()
    try:
        assert lock_waiter(pg_database, pids.get(timeout=30)), "the second session never waited for the first"
    finally:
        first.commit()
        first.close()
        racer.join(timeout=30)
    assert outcome == ["another command opened a review of this account at the same time; nothing was saved"]
