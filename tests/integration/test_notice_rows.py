"""The review notices' commit hook (`notices._sender`) writes the very outbox rows that the generic routing path
(`Routing.messages` through `People` and `resolve_roles`, with User objects) makes of the same events: subject,
body, payload (its JSON text too), dedupe key, channels and times, under varied settings and review values."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pulsecheck.notifications import notices, outbox
from pulsecheck.notifications.outbox import People, Routing
from pulsecheck.storage.bulk import transient
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, Review, ReviewEvent, User
from tests.conftest import NOW, Factory
from tests.integration.conftest import configure

SETTINGS = {
    "defaults": "",
    "one channel, a zone, links": 'timezone = "Europe/Berlin"\n[notifications]\nchannel = "file"\n'
                                  'base_url = "https://pulse.example.com/"\n',
    "routes by group and kind": '[notifications]\nchannel = "file"\n[notifications.routes]\n'
                                'review = ["email", "webhook"]\n'
                                'review_rejected = { default = ["log"], high = ["file"] }\n',
    "web link, New York": 'timezone = "America/New_York"\n[web]\nbase_url = "https://x.example/pc"\n'
                          '[notifications.routes]\nreview_approved = ["webhook", "log", "email"]\n',
}  # fmt: skip

# review values: (reviewer, approver, priority, due_at, comment)
REVIEWS = [
    ("bob", "maria", None, None, None),
    ("bob", "maria", "P1", datetime(2026, 3, 14, 9, 0, tzinfo=UTC), "Add evidence.\n\n  for risk 2  \n"),
    ("ann", "maria", "P3", datetime(2026, 11, 1, 23, 59, 30, tzinfo=timezone(timedelta(hours=-5))), "   "),
    ("bob", None, "", NOW, "ok"),
    ("ghost", "nobody", "P2", NOW + timedelta(days=14), "line one\nline two"),
    ("ann", "", None, NOW, ""),
    ("bob", "ann", "P1", NOW, "\x1d marker-like \x1a text\x1d"),
]
EVENTS = [("submit", "bob"), ("reject", "maria"), ("approve", "maria")]


@pytest.fixture
def people(factory: Factory) -> Factory:
    """maria (an email), bob (an email), ann (neither), ACME named with spaces and quotes."""
    factory.team()
    factory.user("ann", "reviewer", manager="maria")
    with factory.database.transaction() as session:
        account = session.scalars(select(Account).where(Account.external_id == "ACME")).one()
        account.name = "  Acme  \"Corp\"\n 'East' "
        session.scalars(select(User).where(User.name == "maria")).one().webhook = "https://hooks.example/m"
    return factory


def _events(session: Any, values: tuple[Any, ...], first_id: int) -> list[ReviewEvent]:
    """The events of one review as a transition hands them to the commit hooks: transient rows (`rows.write`)."""
    reviewer, approver, priority, due_at, comment = values
    account_row = {column.key: getattr(row, column.key) for row in [session.scalars(select(Account)).one()]
                   for column in Account.__table__.columns}
    account = transient(Account, [account_row])[0]
    review = transient(Review, [{"id": 40 + first_id, "account_id": account.id, "reviewer": reviewer,
                                 "approver": approver, "priority": priority, "due_at": due_at, "account": account}])[0]
    return [transient(ReviewEvent, [{"id": first_id + k, "review_id": review.id, "event": event, "actor": actor,
                                     "comment": comment, "at": NOW + timedelta(minutes=k), "review": review}])[0]
            for k, (event, actor) in enumerate(EVENTS)]


def _expected(session: Any, routing: Routing, found: list[ReviewEvent]) -> list[dict[str, Any]]:
    """The outbox rows of `found` made as the hook made them before it read users as rows: through the generic
    routing path, each recipient a User object read by `People`."""
    people = People(session)
    rows: list[dict[str, Any]] = []
    for row in found:
        kind, role = notices.NOTICES[row.event]
        review = row.review
        context = {"review_id": review.id, "actor": row.actor, "comment": row.comment, "priority": review.priority,
                   "due_at": review.due_at}
        rows += routing.messages(people, kind, [role], review.account, review, context, f"review-event:{row.id}",
                                 row.at)
    return rows


def _outcome(make: Callable[[], Any]) -> Any:
    """What `make` returns, or the type and message of what it raises."""
    try:
        return make()
    except Exception as error:  # noqa: BLE001 - compared, not handled
        return type(error), str(error)


def _same(made: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert made == expected
    assert [list(row) for row in made] == [list(row) for row in expected]  # the columns in the same order
    assert [json.dumps(row["payload"]) for row in made] == [json.dumps(row["payload"]) for row in expected]


@pytest.mark.parametrize("toml", SETTINGS.values(), ids=SETTINGS.keys())
@pytest.mark.parametrize("known", ["read by the transition", "read at commit"])
def test_the_hook_writes_the_rows_the_routing_path_makes(
    tmp_path: Path, database: Database, people: Factory, monkeypatch: pytest.MonkeyPatch, toml: str, known: str
) -> None:
    settings = configure(tmp_path, database, toml)
    written: list[list[dict[str, Any]]] = []
    monkeypatch.setattr(outbox, "enqueue_rows", lambda session, rows: written.append(list(rows)))
    send = notices._sender(settings)
    routing = Routing.from_settings(settings)
    with database.transaction() as session:
        users = [dict(row) for row in session.execute(select(User.__table__)).mappings()]
        for n, values in enumerate(REVIEWS):
            found = _events(session, values, 100 * (n + 1))
            for batch in ([event] for event in found), [found]:  # a commit with one event, or with several
                for events in batch:
                    if known == "read by the transition":
                        notices.know_users(session, [user for user in users if user["name"] in ("bob", "maria")])
                    written.clear()
                    made = _outcome(lambda events=events: send(session, events) or written[0])
                    expected = _outcome(lambda events=events: _expected(session, routing, events))
                    if isinstance(expected, list):
                        _same(made, expected)
                    else:  # a rejection without a comment: the same error
                        assert made == expected
        session.rollback()


def test_the_rows_name_each_channel_and_only_existing_recipients(
    tmp_path: Path, database: Database, people: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison above is not vacuous: notices to users that exist, one row per routed channel."""
    settings = configure(tmp_path, database, SETTINGS["routes by group and kind"])
    written: list[list[dict[str, Any]]] = []
    monkeypatch.setattr(outbox, "enqueue_rows", lambda session, rows: written.append(list(rows)))
    send = notices._sender(settings)
    with database.transaction() as session:
        send(session, _events(session, REVIEWS[1], 100))
        send(session, _events(session, REVIEWS[4], 200))  # nobody of those names
        session.rollback()
    assert [(row["recipient"], row["channel"], row["dedupe_key"]) for row in written[0]] == [
        ("maria", "email", "review-event:100:maria:email"), ("maria", "webhook", "review-event:100:maria:webhook"),
        ("bob", "log", "review-event:101:bob:log"),
        ("bob", "email", "review-event:102:bob:email"), ("bob", "webhook", "review-event:102:bob:webhook"),
    ]
    assert written[0][0]["payload"]["webhook"] == "https://hooks.example/m"
    assert written[1] == []


@pytest.mark.parametrize("toml", SETTINGS.values(), ids=SETTINGS.keys())
def test_events_the_orm_wrote_give_the_same_rows(
    tmp_path: Path, database: Database, people: Factory, monkeypatch: pytest.MonkeyPatch, toml: str
) -> None:
    """Events written as ORM objects (a scheduled job's, the demo's): their review loaded on first use, or set."""
    settings = configure(tmp_path, database, toml)
    review_id = people.review()
    written: list[list[dict[str, Any]]] = []
    monkeypatch.setattr(outbox, "enqueue_rows", lambda session, rows: written.append(list(rows)))
    send = notices._sender(settings)
    routing = Routing.from_settings(settings)
    with database.transaction() as session:
        review = session.get(Review, review_id)
        assert review is not None
        review.approver, review.priority, review.due_at = "maria", "P1", NOW + timedelta(days=3)
        found = [ReviewEvent(review_id=review_id, event="submit", from_state="draft", to_state="submitted",
                             actor="bob", at=NOW, cause="user"),
                 ReviewEvent(review=review, event="reject", from_state="submitted", to_state="draft",
                             actor="maria", comment="why?", at=NOW, cause="user")]
        session.add_all(found)
        session.flush()
        session.expire(review, ["priority"])  # read again through the attribute
        send(session, found)
        _same(written[0], _expected(session, routing, found))
        assert list(dict.fromkeys(row["recipient"] for row in written[0])) == ["maria", "bob"]
        session.rollback()
