"""`/api/v1` through the ASGI client with personal access tokens: every action allowed or refused per permission
cell, read against write tokens, revoked and expired tokens, the optimistic-lock conflict, errors as JSON."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, Escalation, User
from pulsecheck.workflow import escalations
from pulsecheck.workflow.tokens import revoke_token
from tests.conftest import Factory
from tests.web import api_helpers
from tests.web.api_helpers import Api, MakeToken
from tests.web.conftest import Clock

api, token = api_helpers.api, api_helpers.token  # the fixtures

NO_TOKEN = {"error": "no API token: send `Authorization: Bearer TOKEN` (create one: pulsecheck tokens create)"}
BAD_TOKEN = {"error": "the API token is unknown, revoked or expired: create a new one (pulsecheck tokens create)"}


def escalate(database: Database, now: Any, owner: str = "bob") -> int:
    with database.transaction() as session:
        account = session.scalars(select(Account).where(Account.external_id == "ACME")).one()
        return escalations.create(session, account.id, "drop", "high", "P2", "Score dropped", owner,
                                  now + timedelta(days=2), now).id


def escalation_status(database: Database, escalation_id: int) -> str:
    with database.transaction() as session:
        found = session.get(Escalation, escalation_id)
        assert found is not None
        return found.status


@pytest.fixture
def submitted(team: Factory) -> int:
    review = team.review()
    team.complete(review)
    team.fire(review, "submit", "bob")
    return review


# (action on a review, who) -> allowed? bob is the reviewer, maria his manager and the approver, hank another
# manager, olga ops: by the permission table's rows review.submit / approve / reject / edit.
REVIEW_CELLS = [
    ("submit", "bob", True), ("submit", "maria", False), ("submit", "hank", False), ("submit", "olga", False),
    ("approve", "maria", True), ("approve", "hank", False), ("approve", "bob", False), ("approve", "olga", False),
    ("reject", "maria", True), ("reject", "hank", False), ("reject", "bob", False), ("reject", "olga", False),
]


@pytest.mark.parametrize(("event", "who", "allowed"), REVIEW_CELLS)
def test_review_actions_by_the_permission_table(team: Factory, api: Api, event: str, who: str,
                                                allowed: bool) -> None:
    review = team.review()
    team.complete(review)
    if event != "submit":
        team.fire(review, "submit", "bob")
    before = team.state(review)
    response = api(who).post(f"/api/v1/reviews/{review}/{event}", json={"comment": "Checked the numbers"})
    expected_state = {"submit": "submitted", "approve": "approved", "reject": "draft"}[event]
    if allowed:
        assert response.status_code == 200, response.text
        assert response.json()["state"] == expected_state
        assert team.state(review) == expected_state
    else:
        assert response.status_code == 403, response.text
        assert who in response.json()["error"]  # the CLI's refusal names the actor
        assert team.state(review) == before


@pytest.mark.parametrize(("who", "allowed"), [("bob", True), ("maria", True), ("hank", False), ("olga", False)])
def test_setting_a_field_by_the_permission_table(team: Factory, api: Api, who: str, allowed: bool) -> None:
    review = team.review()
    response = api(who).put(f"/api/v1/reviews/{review}/fields/account_goals", json={"value": "Grow to 900 seats"})
    assert response.status_code == (200 if allowed else 403), response.text
    shown = api("bob", "read").get(f"/api/v1/reviews/{review}").json()
    assert shown["account_goals"] == ("Grow to 900 seats" if allowed else None)


# escalation.ack / resolve: the owner, managers, head of CS, ops, admins; not a reviewer without a relation.
ESCALATION_CELLS = [(action, who, who != "rita") for action in ("ack", "resolve")
                    for who in ("bob", "maria", "hank", "olga", "rita")]


@pytest.mark.parametrize(("action", "who", "allowed"), ESCALATION_CELLS)
def test_escalation_actions_by_the_permission_table(team: Factory, api: Api, database: Database, now: Any,
                                                    action: str, who: str, allowed: bool) -> None:
    team.user("rita", "reviewer")
    escalation = escalate(database, now)
    response = api(who).post(f"/api/v1/escalations/{escalation}/{action}")
    after = {"ack": "acknowledged", "resolve": "resolved"}[action]
    assert response.status_code == (200 if allowed else 403), response.text
    assert escalation_status(database, escalation) == (after if allowed else "open")
    if allowed:
        assert response.json()["status"] == after


def test_a_read_token_reads_and_is_refused_every_write(team: Factory, api: Api, submitted: int,
                                                       database: Database, now: Any) -> None:
    escalation = escalate(database, now, owner="maria")
    reader = api("maria", "read")
    assert reader.get(f"/api/v1/reviews/{submitted}").status_code == 200
    for path, body in ((f"/api/v1/reviews/{submitted}/approve", {}),
                       (f"/api/v1/escalations/{escalation}/ack", None)):
        refused = reader.post(path, json=body)
        assert refused.status_code == 403
        assert "read-only" in refused.json()["error"]
    refused = reader.put(f"/api/v1/reviews/{submitted}/fields/manager_comments", json={"value": "x"})
    assert refused.status_code == 403
    assert team.state(submitted) == "submitted"
    assert escalation_status(database, escalation) == "open"


def test_no_token_a_wrong_one_and_a_session_cookie_are_401(team: Factory, api: Api, client: Any) -> None:
    assert api().get("/api/v1/reviews").status_code == 401
    assert api().get("/api/v1/reviews").json() == NO_TOKEN
    assert api(secret="pct_not-a-token").get("/api/v1/inbox").json() == BAD_TOKEN
    signed_in = client("bob")  # the API takes no cookies: a page cannot be made to call it cross-site
    assert signed_in.get("/api/v1/reviews").status_code == 401
    assert api().get("/api/v1/health").json() == {"status": "ok"}


def test_a_revoked_token_is_401(team: Factory, api: Api, token: MakeToken, database: Database, now: Any) -> None:
    secret = token("bob")
    bob = api(secret=secret)
    assert bob.get("/api/v1/inbox").status_code == 200
    with database.transaction() as session:
        maria = session.scalars(select(User).where(User.name == "maria")).one()
        from pulsecheck.storage.models import ApiToken

        revoked = session.scalars(select(ApiToken)).one()
        admin = User(name="root", roles="admin")
        with pytest.raises(Exception, match="cannot manage the API tokens of bob"):
            revoke_token(session, maria, revoked.id, now)  # not her token
        revoke_token(session, admin, revoked.id, now)
    response = bob.get("/api/v1/inbox")
    assert response.status_code == 401 and response.json() == BAD_TOKEN


def test_an_expired_token_is_401(team: Factory, api: Api, token: MakeToken, clock: Clock) -> None:
    bob = api(secret=token("bob", "read", days=30))
    clock.advance(timedelta(days=29, hours=23))
    assert bob.get("/api/v1/inbox").status_code == 200
    clock.advance(timedelta(hours=1))
    assert bob.get("/api/v1/inbox").status_code == 401


def test_two_managers_approving_at_once_one_wins_one_conflicts(team: Factory, api: Api, submitted: int) -> None:
    first, second = api("maria"), api("maria")  # two scripts that read the same review
    etag = first.get(f"/api/v1/reviews/{submitted}").headers["ETag"]
    assert second.get(f"/api/v1/reviews/{submitted}").headers["ETag"] == etag
    won = first.post(f"/api/v1/reviews/{submitted}/approve", json={"comment": "Agreed"}, headers={"If-Match": etag})
    lost = second.post(f"/api/v1/reviews/{submitted}/reject", json={"comment": "No"}, headers={"If-Match": etag})
    assert won.status_code == 200 and won.headers["ETag"] != etag
    assert lost.status_code == 409
    assert "changed since you opened it" in lost.json()["error"]
    assert team.state(submitted) == "approved"


def test_an_api_action_is_audited_as_the_tokens_user(team: Factory, api: Api, submitted: int,
                                                    database: Database) -> None:
    from pulsecheck.storage.models import ApiToken, AuditEntry

    assert api("maria").post(f"/api/v1/reviews/{submitted}/approve", json={"comment": "Agreed"}).status_code == 200
    with database.transaction() as session:
        token_id = session.scalars(select(ApiToken.id).where(ApiToken.scope == "write")).one()
        actors = session.scalars(select(AuditEntry.actor).where(AuditEntry.kind == "review",
                                                                AuditEntry.record_id == submitted)).all()
    assert actors[-1] == f"maria via token session {token_id}"


def test_errors_are_json_with_the_clis_message(team: Factory, api: Api, run: Any) -> None:
    bob = api("bob")
    missing = bob.get("/api/v1/reviews/999")
    cli = run("review", "show", "999")
    assert missing.status_code == 404
    assert f"error: {missing.json()['error']}" in cli.output
    assert bob.get("/api/v1/reviews?state=bogus").status_code == 422
    assert bob.get("/api/v1/reviews/abc").status_code == 422
    assert "error" in bob.get("/api/v1/reviews/abc").json()
    assert bob.get("/api/v1/accounts/NOPE").status_code == 404
    assert bob.post("/api/v1/reviews/1/bogus", json={}).status_code == 422
    assert bob.post("/api/v1/reviews/1/submit", json={"comment": 5}).status_code == 422


def test_a_submit_needs_no_body(team: Factory, api: Api) -> None:
    review = team.review()
    team.complete(review)
    assert api("bob").post(f"/api/v1/reviews/{review}/submit").json()["state"] == "submitted"


def test_reads_have_the_clis_json_shapes(team: Factory, api: Api, submitted: int, database: Database,
                                         now: Any, run: Any) -> None:
    from pulsecheck.workflow.cycles import start

    escalate(database, now)
    with database.transaction() as session:
        owner = session.scalars(select(User).where(User.name == "bob")).one()
        cycle = start(session, "2026-Q4", [], "bob", owner, now).id
    bob = api("bob", "read")
    pairs = [
        ("/api/v1/reviews", ["review", "list", "--limit", "50", "--json"]),
        ("/api/v1/reviews?state=submitted", ["review", "list", "--state", "submitted", "--limit", "50", "--json"]),
        ("/api/v1/reviews?account=ACME&limit=1", ["review", "list", "--account", "ACME", "--limit", "1", "--json"]),
        (f"/api/v1/reviews/{submitted}", ["review", "show", str(submitted), "--json"]),
        (f"/api/v1/reviews/{submitted}/history", ["review", "history", str(submitted), "--json"]),
        ("/api/v1/accounts?offset=1&limit=2", ["accounts", "list", "--offset", "1", "--limit", "2", "--json"]),
        ("/api/v1/accounts/ACME", ["accounts", "show", "ACME", "--json"]),
        ("/api/v1/escalations", ["escalations", "list", "--limit", "50", "--json"]),
        ("/api/v1/escalations?open=true", ["escalations", "list", "--open", "--limit", "50", "--json"]),
        ("/api/v1/cycles", ["cycle", "list", "--limit", "50", "--json"]),
        ("/api/v1/cycles?state=draft", ["cycle", "list", "--state", "draft", "--limit", "50", "--json"]),
        (f"/api/v1/cycles/{cycle}", ["cycle", "show", str(cycle), "--json"]),
        ("/api/v1/portfolio?segment=enterprise", ["report", "portfolio", "--segment", "enterprise", "--json"]),
        ("/api/v1/portfolio", ["report", "portfolio", "--json"]),
    ]
    for path, command in pairs:
        response = bob.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.json() == json.loads(run(*command).output), path


def test_the_inbox_lists_what_waits_for_me(team: Factory, api: Api, submitted: int, database: Database,
                                           now: Any) -> None:
    escalation = escalate(database, now, owner="maria")
    def sections(who: str) -> dict[str, list[dict[str, Any]]]:
        box = api(who, "read").get("/api/v1/inbox").json()  # the `pulsecheck inbox --json` shape
        return {section["key"]: section["items"] for section in box["sections"]}

    mine = sections("maria")
    assert [r["review"] for r in mine["approvals"]] == [submitted]
    assert [e["escalation"] for e in mine["escalations"]] == [escalation]
    assert mine["drafts"] == []
    assert sections("bob")["approvals"] == []


def test_the_schema_and_docs_are_served_without_a_cdn(team: Factory, api: Api) -> None:
    schema = api().get("/api/openapi.json").json()
    assert "/api/v1/reviews/{review_id}/{event}" in schema["paths"]
    assert not any(path.startswith("/reviews") for path in schema["paths"])  # the HTML pages are not the API
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    docs = api().get("/api/docs")
    assert docs.status_code == 200
    assert "/api/v1/escalations/{escalation_id}/ack" in docs.text
    assert "script" not in docs.text and "https://" not in docs.text and "http://" not in docs.text
    assert "default-src 'self'" in docs.headers["Content-Security-Policy"]
