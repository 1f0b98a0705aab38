"""`/reviews/{id}` through the ASGI client: the form, every submit reason at once, submit, approve and reject by
the permission table, a conflict between two managers, attachments, and hostile data rendered inert."""

from __future__ import annotations

import html
from typing import Any

import pytest
from sqlalchemy import update

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account
from tests.conftest import Factory
from tests.web.conftest import Client, post, version_of

FILLED = {
    "account_goals": "Expand to 500 seats",
    "goal_summary": "320 seats, on track",
    "overall_assessment": "Healthy but exposed to a champion change",
    "next_review_date": "2027-02-20",
    "risk-1-description": "Champion leaving",
    "risk-1-severity": "high",
    "risk-1-category": "customer",
    "action-1-risk": "1",
    "action-1-description": "Build a second champion",
    "action-1-owner": "bob",
    "action-1-due_date": "2026-12-20",
    "action-1-status": "open",
}


def save(client: Any, review: int, data: dict[str, str]) -> Any:
    path = f"/reviews/{review}"
    return post(client, f"{path}/save", {"version": version_of(client, path), **data}, page=path)


def act(client: Any, review: int, event: str, comment: str = "", version: str | None = None) -> Any:
    path = f"/reviews/{review}"
    return post(client, f"{path}/{event}", {"version": version or version_of(client, path), "comment": comment},
                page=path)


@pytest.fixture
def review(team: Factory) -> int:
    return team.review()


def test_every_reason_not_to_submit_is_shown_at_once(team: Factory, client: Client, review: int) -> None:
    page = client("bob").get(f"/reviews/{review}").text
    for reason in ("account_goals is empty", "goal_summary is empty", "the review has no risk",
                   "overall_assessment is empty", "next_review_date is not set"):
        assert reason in html.unescape(page), reason
    assert page.count('class="req"') >= 5  # required fields are marked


def test_the_reviewer_fills_risks_and_actions_and_submits(team: Factory, client: Client, review: int) -> None:
    bob = client("bob")
    assert save(bob, review, FILLED).status_code == 303
    page = html.unescape(bob.get(f"/reviews/{review}").text)
    assert "Before it can be submitted" not in page
    assert 'value="Champion leaving"' in page and 'value="Build a second champion"' in page
    assert act(bob, review, "submit").status_code == 303
    assert team.state(review) == "submitted"


def test_risks_are_edited_and_removed_with_their_actions(team: Factory, client: Client, review: int) -> None:
    bob = client("bob")
    save(bob, review, FILLED | {"risk-2-description": "Budget freeze", "action-2-risk": "2",
                                "action-2-description": "Meet the CFO", "action-2-owner": "bob",
                                "action-2-due_date": "2026-12-21"})
    page = bob.get(f"/reviews/{review}").text
    assert "Budget freeze" in page and "Meet the CFO" in page
    save(bob, review, FILLED | {"risk-1-description": "Champion moving to a competitor", "risk-2-description":
                                "Budget freeze", "risk-2-remove": "1", "action-2-risk": "2",
                                "action-2-description": "Meet the CFO"})
    page = bob.get(f"/reviews/{review}").text
    assert "Champion moving to a competitor" in page
    assert "Budget freeze" not in page and "Meet the CFO" not in page


def test_a_missing_action_keeps_submit_refused_with_the_reason(team: Factory, client: Client, review: int) -> None:
    bob = client("bob")
    save(bob, review, {k: v for k, v in FILLED.items() if not k.startswith("action-")})
    page = html.unescape(bob.get(f"/reviews/{review}").text)
    assert "risk 1 has no mitigation action with an owner and a due date" in page
    refused = act(bob, review, "submit")
    assert refused.status_code == 403 and "risk 1 has no mitigation action" in html.unescape(refused.text)


@pytest.fixture
def submitted(team: Factory, review: int) -> int:
    team.complete(review)
    team.fire(review, "submit", "bob")
    return review


# (who, event, comment) -> HTTP status: the permission table's cells for the review's people
CELLS = [
    ("maria", "approve", "Agreed", 303),  # the assigned approver, a manager
    ("maria", "reject", "Fix the dates", 303),
    ("bob", "approve", "Mine", 403),  # the reviewer: four-eyes
    ("bob", "reject", "No", 403),
    ("hank", "approve", "Not mine", 403),  # a manager, not the assigned approver
    ("hank", "reject", "Not mine", 403),
    ("olga", "approve", "Ops", 403),
    ("maria", "reject", "", 403),  # a rejection needs a comment
]


@pytest.mark.parametrize(("who", "event", "comment", "status"), CELLS)
def test_decisions_by_the_permission_table(
    team: Factory, client: Client, submitted: int, who: str, event: str, comment: str, status: int
) -> None:
    response = act(client(who), submitted, event, comment)
    assert response.status_code == status, response.text
    assert team.state(submitted) == ({"approve": "approved", "reject": "draft"}[event] if status == 303
                                     else "submitted")


def test_only_the_assigned_approver_sees_the_decision_form(team: Factory, client: Client, submitted: int) -> None:
    assert "Approve and sign" in client("maria").get(f"/reviews/{submitted}").text
    assert "Approve and sign" not in client("hank").get(f"/reviews/{submitted}").text
    assert "Approve and sign" not in client("bob").get(f"/reviews/{submitted}").text


def test_two_managers_approving_at_once_one_wins_one_conflicts(team: Factory, client: Client, submitted: int) -> None:
    first, second = client("maria"), client("maria")  # two browsers that opened the same page
    version = version_of(first, f"/reviews/{submitted}")
    assert version_of(second, f"/reviews/{submitted}") == version
    assert act(first, submitted, "approve", "Agreed", version).status_code == 303
    lost = act(second, submitted, "reject", "No", version)
    assert lost.status_code == 409
    assert "changed since you opened it" in lost.text
    assert team.state(submitted) == "approved"


def test_an_edit_with_a_stale_form_is_a_conflict(team: Factory, client: Client, review: int) -> None:
    bob = client("bob")
    stale = version_of(bob, f"/reviews/{review}")
    save(bob, review, FILLED)
    late = post(bob, f"/reviews/{review}/save", {"version": stale, **FILLED}, page=f"/reviews/{review}")
    assert late.status_code == 409


def test_the_reviewer_sees_the_rejection_comment(team: Factory, client: Client, submitted: int) -> None:
    act(client("maria"), submitted, "reject", "Please date the actions in Q1")
    page = client("bob").get(f"/reviews/{submitted}").text
    assert "Please date the actions in Q1" in page and "reject" in page


def test_attachments_upload_and_download(team: Factory, client: Client, review: int) -> None:
    bob = client("bob")
    path = f"/reviews/{review}"
    from tests.web.conftest import csrf_of

    response = bob.post(f"{path}/attachments/add", data={"csrf": csrf_of(bob, path), "note": "QBR deck"},
                        files={"file": ("qbr.pdf", b"%PDF-1.4 deck", "application/pdf")})
    assert response.status_code == 303
    assert "qbr.pdf" in bob.get(path).text
    download = client("maria").get(f"{path}/attachments/1")
    assert download.status_code == 200 and download.content == b"%PDF-1.4 deck"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["content-type"] == "application/octet-stream"


def test_an_attachment_over_the_limit_is_refused(team: Factory, client: Client, review: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.web.conftest import csrf_of

    bob = client("bob")
    path = f"/reviews/{review}"
    big = b"x" * (10 * 1024 * 1024 + 1)  # [attachments] max_size 10MB
    response = bob.post(f"{path}/attachments/add", data={"csrf": csrf_of(bob, path)},
                        files={"file": ("big.bin", big, "application/octet-stream")})
    assert response.status_code == 422 and "over the attachment limit" in response.text


HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)>"


def test_hostile_data_renders_as_text(team: Factory, client: Client, review: int, database: Database) -> None:
    from tests.web.conftest import csrf_of

    with database.transaction() as session:
        session.execute(update(Account).values(name=HOSTILE))
    bob = client("bob")
    save(bob, review, FILLED | {"risk-1-description": HOSTILE, "employee_comments": HOSTILE})
    path = f"/reviews/{review}"
    bob.post(f"{path}/attachments/add", data={"csrf": csrf_of(bob, path)},
             files={"file": (f"{HOSTILE}.txt", b"hi", "text/plain")})
    team.fire(review, "submit", "bob")
    act(client("maria"), review, "reject", HOSTILE)
    for page in ("/", path, "/accounts/ACME", "/escalations", "/portfolio"):
        text = bob.get(page).text
        assert "<script>alert" not in text and "<img src=x" not in text, page
    assert "&lt;script&gt;alert(" in bob.get(path).text


def test_dates_are_shown_in_the_business_time_zone(team: Factory, review: int, database: Database, now: Any,
                                                   db_url: str, clock: Any) -> None:
    from fastapi.testclient import TestClient

    from pulsecheck.config import load_settings
    from pulsecheck.storage.models import Review
    from pulsecheck.web.app import create_app
    from tests.web.conftest import sign_in

    with database.transaction() as session:  # due 23:30 UTC on 1 Dec: 00:30 on 2 Dec in Berlin
        session.execute(update(Review).values(due_at=now.replace(day=1, month=12, hour=23, minute=30)))
    settings = load_settings(env={"PULSECHECK_DATABASE_URL": db_url, "PULSECHECK_TIMEZONE": "Europe/Berlin"})
    with TestClient(create_app(settings, database, clock), follow_redirects=False) as berlin:
        sign_in(berlin, "bob")
        page = berlin.get(f"/reviews/{review}").text
    assert "2 Dec 2026 00:30" in page and "$120,000" in berlin.get("/accounts/ACME").text


def test_the_page_shows_the_account_and_the_baseline_scorecard(team: Factory, client: Client,
                                                                 database: Database) -> None:
    from datetime import timedelta

    from pulsecheck.storage.models import ScoreSnapshot, ScoringModelVersion
    from tests.integration.test_review_workflow import BASELINE_MODEL, _component

    assert "No scorecard baseline" in client("bob").get(f"/reviews/{team.review()}").text  # ACME had no score
    team.fire(1, "withdraw", "maria", "scored now")
    with database.transaction() as session:
        model = ScoringModelVersion(version="2026.11", content=BASELINE_MODEL, sha256="0" * 64, status="approved",
                                    approved_by="olga", approved_at=team.now)
        session.add(model)
        session.flush()
        session.add(ScoreSnapshot(account_id=1, as_of=team.now - timedelta(days=1), score=37.5, bucket="unhealthy",
                                  model_id=model.id, components=[_component(75.0)], provisional=False))
    page = client("bob").get(f"/reviews/{team.review()}").text
    context = page[page.index('id="account-context"'):page.index('id="baseline-scorecard"')]
    for fact in ("<dd>enterprise</dd>", "<dd>$120,000</dd>", "<dd>15 Jan 2027</dd>", "<dd>bob</dd>",
                 "<dd>37.5 (unhealthy)</dd>"):
        assert fact in context, fact
    # usage 75 on a 0-200 scale: normalized 37.5, below 40 -> an area of concern, contribution 37.5 of weight 100
    assert ("<tr><td>usage</td><td>—</td><td>75</td><td>37.5</td><td>100</td><td>37.5</td>"
            '<td class="rating rating-concern">concern</td></tr>') in page
    assert "Areas of concern: usage. Strengths: none." in page
