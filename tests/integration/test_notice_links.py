"""`[web] base_url` turns every call to action into a link to the page that acts on it: each notification kind
rendered with and without it, and the notices the workflow writes itself (review and cycle events) read back
from the outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pulsecheck.notifications.render import KINDS, render
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import CycleStep, User
from tests.conftest import NOW, Factory
from tests.integration.conftest import configure, rows

BASE = "https://pulse.example.com"
CONTEXT: dict[str, Any] = {
    "account_name": "Acme Corp", "account_id": "ACME 1", "review_id": 12, "escalation_id": 7, "rule_id": "drop",
    "severity": "high", "reason": "score fell", "level": 2, "due_at": datetime(2026, 3, 14, 9, 0, tzinfo=UTC),
    "comment": "Add evidence.", "actor": "maria", "count": 1, "items": ["[pulsecheck] x"], "day": "2026-03-14",
    "reminder": 1, "state": "draft", "message": "Renewal soon.", "cycle_id": 3, "period": "2026-Q4",
    "event": "rejected",
}  # fmt: skip

# kind -> (the link with base_url set, the shell command without it)
LINKS = {
    "review_opened": (f"{BASE}/reviews/12", "pulsecheck review show 12"),
    "review_due": (f"{BASE}/reviews/12", "pulsecheck review submit 12"),
    "review_overdue": (f"{BASE}/reviews/12", "pulsecheck review show 12"),
    "review_submitted": (f"{BASE}/reviews/12", "pulsecheck review approve 12"),
    "review_rejected": (f"{BASE}/reviews/12", "pulsecheck review submit 12"),
    "review_approved": (f"{BASE}/reviews/12", "pulsecheck review show 12"),
    "escalation_opened": (f"{BASE}/escalations?ack=7", "pulsecheck escalations ack 7"),
    "escalation_level_up": (f"{BASE}/escalations?ack=7", "pulsecheck escalations ack 7"),
    "generic": (f"{BASE}/accounts/ACME%201", "pulsecheck accounts show 'ACME 1'"),
    "digest": (f"{BASE}/\n", "pulsecheck review list --mine"),
    "cycle_event": (f"{BASE}/cycles/3", "pulsecheck cycle submit 3"),
}


def test_every_kind_has_its_link() -> None:
    assert set(LINKS) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(LINKS))
def test_a_call_to_action_is_a_link_with_base_url_and_a_command_without(kind: str) -> None:
    link, command = LINKS[kind]
    _, linked = render(kind, CONTEXT | {"base_url": BASE})
    assert link in linked
    assert "pulsecheck " not in linked.replace("[pulsecheck]", "")  # no shell command left beside the link
    _, plain = render(kind, CONTEXT)
    assert command in plain and BASE not in plain


def test_the_web_app_serves_every_linked_page(tmp_path: Path, database: Database, factory: Factory) -> None:
    """Each path a notification links to is a route of the app (a signed-out visit is sent to sign in, not 404)."""
    from fastapi.testclient import TestClient

    from pulsecheck.web.app import create_app

    settings = configure(tmp_path, database, f'[web]\nbase_url = "{BASE}"\n')
    with TestClient(create_app(settings, database, lambda: NOW), follow_redirects=False) as client:
        for kind in KINDS:
            link = LINKS[kind][0].strip()
            response = client.get(link.removeprefix(BASE) or "/")
            assert response.status_code == 303 and response.headers["location"].startswith("/signin"), kind


@pytest.fixture
def hooked(tmp_path: Path, database: Database, factory: Factory) -> Database:
    """The team, with the notices of review and cycle events installed and links under BASE."""
    from pulsecheck.notifications import notices

    factory.team()
    factory.user("hank", "manager")
    notices.install(database, configure(tmp_path, database, f'[web]\nbase_url = "{BASE}/"\n'))
    return database


def bodies(database: Database, kind: str) -> list[tuple[str, str]]:
    return [(row.recipient, row.body) for row in rows(database) if row.kind == kind]


def test_review_events_link_to_the_review(hooked: Database, factory: Factory) -> None:
    review = factory.review()
    factory.complete(review)
    factory.fire(review, "submit", "bob")
    factory.fire(review, "reject", "maria", comment="Add evidence.")
    ((to_maria, submitted),) = bodies(hooked, "review_submitted")
    ((to_bob, rejected),) = bodies(hooked, "review_rejected")
    assert (to_maria, to_bob) == ("maria", "bob")
    assert f"Read it:     {BASE}/reviews/{review}\n" in submitted
    assert f"Read it:        {BASE}/reviews/{review}\n" in rejected


def test_cycle_events_notify_who_acts_next_with_a_link_to_the_cycle(hooked: Database, now: Any) -> None:
    from pulsecheck.states.cycle import STEPS
    from pulsecheck.workflow.cycles import start, transition

    def user(session: Any, name: str) -> User:
        return session.scalars(select(User).where(User.name == name)).one()

    with hooked.transaction() as session:
        cycle = start(session, "2026-Q4", [], "bob", user(session, "bob"), now).id
        session.add_all(CycleStep(cycle_id=cycle, step=s, done_by="bob", done_at=now, evidence=[], result={})
                        for s in STEPS)  # the seven steps, as done
    for event, actor, comment in [("submit", "bob", None), ("reject", "hank", "Findings lack owners.")]:
        with hooked.transaction() as session:
            transition(session, cycle, event, user(session, actor), now, comment)
    notices = [(row.recipient, row.subject) for row in rows(hooked) if row.kind == "cycle_event"]
    assert notices == [
        ("maria", f"[pulsecheck] Review cycle #{cycle} (2026-Q4) was submitted by bob"),  # bob's manager
        ("bob", f"[pulsecheck] Review cycle #{cycle} (2026-Q4) was rejected by hank"),  # the owner
    ]
    for _, body in bodies(hooked, "cycle_event"):
        assert f"Open it:     {BASE}/cycles/{cycle}\n" in body and "pulsecheck cycle" not in body
    assert "    Findings lack owners.\n" in bodies(hooked, "cycle_event")[1][1]
