"""`/api/v1/cycles` actions through the ASGI client with personal access tokens: start, findings added, edited and
closed, decisions and the transitions, each allowed or refused by the permission table's cells, the version
conflicts (the cycle's ETag, a finding's own version), read-only tokens refused, and the answer in `cycle show
--json`'s shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import CycleFinding, ReviewCycle, User
from tests.conftest import NOW, Factory
from tests.web import api_helpers
from tests.web.api_helpers import Api

api, token = api_helpers.api, api_helpers.token  # the fixtures


@pytest.fixture
def cycle(team: Factory, database: Database) -> int:
    """A draft cycle owned by bob (maria is his manager, hank another manager, olga ops), with one finding bob
    added, and carol, a reviewer with no part in it."""
    from pulsecheck.workflow.cycles import add_finding, start

    team.user("carol", "reviewer")
    with database.transaction() as session:
        bob = session.scalars(select(User).where(User.name == "bob")).one()
        started = start(session, "2026-Q4", [], "bob", bob, NOW).id
        add_finding(session, started, "data", "CRM export missed two accounts", bob, NOW)
        return started


def last_finding(database: Database) -> CycleFinding:
    with database.transaction() as session:
        last = session.scalar(select(func.max(CycleFinding.id)))
        found = session.get(CycleFinding, last)
        assert found is not None
        session.expunge(found)
        return found


# cycle.work: its_owner, manager, admin
WORK_CELLS = [("bob", True), ("maria", True), ("hank", True), ("olga", False), ("carol", False)]


@pytest.mark.parametrize(("who", "allowed"), WORK_CELLS)
def test_edit_a_finding_by_the_permission_table(cycle: int, api: Api, database: Database, who: str,
                                                allowed: bool) -> None:
    finding = last_finding(database).id
    response = api(who).patch(f"/api/v1/cycles/{cycle}/findings/{finding}",
                              json={"detail": "CRM export missed three accounts"})
    assert response.status_code == (200 if allowed else 403), response.text
    detail = last_finding(database).detail
    assert detail == ("CRM export missed three accounts" if allowed else "CRM export missed two accounts")
    if allowed:
        shown = next(f for f in response.json()["findings"] if f["id"] == finding)
        assert shown["detail"] == "CRM export missed three accounts"
    else:
        assert response.json()["error"] == (
            f"cannot edit finding {finding}: only the owner (bob), a manager or an admin may work, not {who}")


def test_a_finding_edit_on_an_old_version_is_a_conflict(cycle: int, api: Api, database: Database) -> None:
    bob, maria = api("bob"), api("maria")
    finding = last_finding(database).id
    path = f"/api/v1/cycles/{cycle}/findings/{finding}"

    def version() -> str:
        shown = bob.get(f"/api/v1/cycles/{cycle}").json()
        return str(next(f["version"] for f in shown["findings"] if f["id"] == finding))

    read = version()
    assert maria.patch(path, json={"detail": "maria's words"}, headers={"If-Match": f'"{read}"'}).status_code == 200
    late = bob.patch(path, json={"detail": "bob's words"}, headers={"If-Match": f'"{read}"'})
    assert late.status_code == 409 and "changed since you read it" in late.json()["error"]
    assert last_finding(database).detail == "maria's words"
    assert bob.patch(path, json={"detail": "bob's words"}, headers={"If-Match": version()}).status_code == 200
    assert last_finding(database).detail == "bob's words"
    assert bob.patch(path, json={}).status_code == 422  # nothing to change
    assert bob.patch(path, json={"detail": " "}).status_code == 422
    assert bob.patch(f"/api/v1/cycles/{cycle + 1}/findings/{finding}", json={"detail": "x"}).status_code == 404
    assert api("bob", "read").patch(path, json={"detail": "read-only"}).status_code == 403
    assert last_finding(database).detail == "bob's words"


def test_findings_added_and_closed_and_a_decision(cycle: int, api: Api, database: Database) -> None:
    bob = api("bob")
    added = bob.post(f"/api/v1/cycles/{cycle}/findings",
                     json={"kind": "process", "detail": "no owner for two accounts", "action": "assign",
                           "owner": "bob", "due": "2026-12-15"})
    assert added.status_code == 201
    new = last_finding(database)
    assert (new.detail, new.corrective_action, str(new.due)) == ("no owner for two accounts", "assign", "2026-12-15")
    assert api("carol").post(f"/api/v1/cycles/{cycle}/findings/{new.id}/close", json={"note": "n"}).status_code == 403
    closed = bob.post(f"/api/v1/cycles/{cycle}/findings/{new.id}/close", json={"note": "assigned"})
    assert closed.status_code == 200
    assert (last_finding(database).status, last_finding(database).close_note) == ("closed", "assigned")
    etag = bob.get(f"/api/v1/cycles/{cycle}").headers["ETag"]
    decided = bob.post(f"/api/v1/cycles/{cycle}/decisions", headers={"If-Match": etag},
                       json={"account": "ACME", "decision": "monitor", "owner": "bob", "reason": "call booked"})
    assert decided.status_code == 200
    assert [(d["account"], d["decision"]) for d in decided.json()["decisions"]] == [("ACME", "monitor")]
    stale = bob.post(f"/api/v1/cycles/{cycle}/decisions", headers={"If-Match": '"1"'},
                     json={"account": "ACME", "decision": "monitor", "owner": "bob", "reason": "again"})
    assert stale.status_code == 409
    assert decided.headers["ETag"] != etag  # the decision changed the cycle


# cycle.reject: manager, admin; cycle.submit: its_owner (all seven steps done first: refused here either way)
@pytest.mark.parametrize(("who", "status"), [("bob", 403), ("maria", 200), ("hank", 200), ("olga", 403),
                                             ("carol", 403)])
def test_reject_by_the_permission_table(cycle: int, api: Api, database: Database, who: str, status: int) -> None:
    with database.transaction() as session:
        found = session.get(ReviewCycle, cycle)
        assert found is not None
        found.state = "submitted"
    response = api(who).post(f"/api/v1/cycles/{cycle}/reject", json={"comment": "findings lack owners"})
    assert response.status_code == status, response.text
    with database.transaction() as session:
        state = session.get(ReviewCycle, cycle)
        assert state is not None and state.state == ("draft" if status == 200 else "submitted")


def test_start_and_submit_and_verify(team: Factory, api: Api, run: Any) -> None:
    started = api("bob").post("/api/v1/cycles", json={"period": "2026-11"})
    assert started.status_code == 201
    cycle = started.json()["id"]
    assert api("olga").post("/api/v1/cycles", json={"period": "2026-11"}).status_code == 403
    refused = api("bob").post(f"/api/v1/cycles/{cycle}/submit")
    assert refused.status_code == 403 and "step scope is still open" in refused.json()["error"]
    verified = api("maria", "read").get(f"/api/v1/cycles/{cycle}/verify")
    assert verified.json() == {"cycle": cycle, "state": "draft", "sealed": False, "ok": True, "problems": []}
    shown = api("maria", "read").get(f"/api/v1/cycles/{cycle}").json()
    assert shown == json.loads(run("cycle", "show", str(cycle), "--json").output)
