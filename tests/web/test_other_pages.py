"""The inbox, escalations, account, cycle and portfolio pages, and the permission cells of their actions."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, Escalation, User
from pulsecheck.workflow import escalations
from tests.conftest import Factory
from tests.web.conftest import Client, csrf_of, post


def escalate(database: Database, now: Any, owner: str = "bob", reason: str = "Score dropped 20 points",
             rule: str = "drop") -> int:
    with database.transaction() as session:
        account = session.scalar(select(Account).where(Account.external_id == "ACME"))
        assert account is not None
        return escalations.create(session, account.id, rule, "high", "P2", reason, owner, now + timedelta(days=2),
                                  now).id


def status_of(database: Database, escalation_id: int) -> str:
    with database.transaction() as session:
        found = session.get(Escalation, escalation_id)
        assert found is not None
        return found.status


def test_the_inbox_lists_what_waits_and_the_nav_counts_it(team: Factory, client: Client, database: Database,
                                                          now: Any) -> None:
    draft = team.review()
    escalate(database, now)
    page = client("bob").get("/").text
    assert f'href="/reviews/{draft}"' in page and "Score dropped 20 points" in page
    assert 'Inbox <span class="count">2</span>' in page  # one draft, one escalation
    team.complete(draft)
    team.fire(draft, "submit", "bob")
    managers = client("maria").get("/").text
    assert "Waiting for my approval (1)" in managers and f'href="/reviews/{draft}"' in managers
    assert "Waiting for my approval (0)" in client("hank").get("/").text


# who acknowledges bob's escalation -> allowed?
ACK_CELLS = [("bob", True), ("maria", True), ("hank", True), ("olga", True), ("rita", False)]


@pytest.mark.parametrize(("who", "allowed"), ACK_CELLS)
def test_acknowledge_by_the_permission_table(team: Factory, client: Client, database: Database, now: Any,
                                             who: str, allowed: bool) -> None:
    team.user("rita", "reviewer")  # a reviewer with no relation to the escalation
    from tests.web.conftest import give_passwords

    give_passwords(database, now, "rita")
    escalation = escalate(database, now)
    response = post(client(who), "/escalations/ack", {"ids": [str(escalation)]}, page="/escalations")
    assert response.status_code == (303 if allowed else 403)
    assert status_of(database, escalation) == ("acknowledged" if allowed else "open")


def test_acknowledge_many_at_once_all_or_none(team: Factory, client: Client, database: Database, now: Any) -> None:
    mine = escalate(database, now, rule="drop")
    also_mine = escalate(database, now, rule="renewal")
    team.user("zed", "reviewer")
    others = escalate(database, now, owner="zed", rule="tickets")
    bob = client("bob")
    refused = post(bob, "/escalations/ack", {"ids": [str(mine), str(others)]}, page="/escalations")
    assert refused.status_code == 403
    assert status_of(database, mine) == "open"  # nothing half done
    assert post(bob, "/escalations/ack", {"ids": [str(mine), str(also_mine)]}, page="/escalations").status_code == 303
    assert status_of(database, mine) == status_of(database, also_mine) == "acknowledged"


def test_resolve_and_filters(team: Factory, client: Client, database: Database, now: Any) -> None:
    first = escalate(database, now, reason="first one", rule="a")
    escalate(database, now, reason="second one", rule="b", owner="maria")
    bob = client("bob")
    mine = bob.get("/escalations?mine=1").text
    assert "first one" in mine and "second one" not in mine
    assert post(bob, f"/escalations/{first}/resolve", page="/escalations").status_code == 303
    assert status_of(database, first) == "resolved"
    assert "first one" not in bob.get("/escalations").text
    assert "first one" in bob.get("/escalations?status=resolved").text


def test_the_account_page(team: Factory, client: Client, database: Database, now: Any) -> None:
    review = team.review()
    escalate(database, now)
    page = html.unescape(client("bob").get("/accounts/ACME").text)
    assert "Acme" in page and "$120,000" in page and "enterprise" in page
    assert "Score dropped 20 points" in page and f"Review {review}" in page
    assert client("bob").get("/accounts/NOPE").status_code == 404


def test_a_cycle_is_shown_and_approved_by_a_manager_only(team: Factory, client: Client, database: Database,
                                                         now: Any) -> None:
    from pulsecheck.workflow.cycles import start

    with database.transaction() as session:
        bob = session.scalar(select(User).where(User.name == "bob"))
        assert bob is not None
        cycle = start(session, "2026-Q4", [], "bob", bob, now).id
    page = client("bob").get(f"/cycles/{cycle}")
    assert page.status_code == 200 and "2026-Q4" in page.text
    assert f"/cycles/{cycle}" in client("maria").get("/cycles").text
    assert f'href="/cycles/{cycle}"' in client("bob").get("/").text  # the owner's inbox
    step = post(client("bob"), f"/cycles/{cycle}/step", {"step": "scope", "note": "two segments"},
                page=f"/cycles/{cycle}")
    assert step.status_code == 303
    assert "two segments" in client("maria").get(f"/cycles/{cycle}").text
    local = post(client("bob"), f"/cycles/{cycle}/step", {"step": "scope", "evidence": "/etc/passwd"},
                 page=f"/cycles/{cycle}")
    assert local.status_code == 422  # a path would read a file on the server
    assert post(client("olga"), f"/cycles/{cycle}/step", {"step": "scope"}, page=f"/cycles/{cycle}").status_code == 403
    refused = post(client("maria"), f"/cycles/{cycle}/submit", {"version": _version(client("maria"), cycle)},
                   page=f"/cycles/{cycle}")
    assert refused.status_code == 403  # only the owner submits


def _version(client: Any, cycle: int) -> str:
    from tests.web.conftest import version_of

    return version_of(client, f"/cycles/{cycle}")


def test_the_portfolio_filters_and_pages(team: Factory, client: Client) -> None:
    bob = client("bob")
    page = bob.get("/portfolio")
    assert page.status_code == 200 and "accounts" in page.text
    assert bob.get("/portfolio?segment=enterprise&q=acme&page=2").status_code == 200
    assert bob.get("/portfolio?segment=nope").status_code == 422


def test_static_assets_are_served_by_the_app(team: Factory, client: Client) -> None:
    css = client().get("/static/style.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    page = client("bob").get("/").text
    assert "http://" not in page.replace('xmlns="http://www.w3.org', "") and "https://" not in page


def test_the_api_is_mounted(team: Factory, client: Client) -> None:
    assert client().get("/api/v1/health").json() == {"status": "ok"}
    _ = csrf_of


def test_the_portfolio_sorts_by_a_column(team: Factory, client: Client, database: Database, now: Any) -> None:
    team.account("ZULU", owner="bob", name="Zulu Corp", segment="enterprise")
    team.account("ALPHA", owner="bob", name="Alpha Corp", segment="enterprise")
    with database.transaction() as session:  # an open escalation puts each at risk
        for external_id in ("ZULU", "ALPHA"):
            account = session.scalar(select(Account).where(Account.external_id == external_id))
            assert account is not None
            escalations.create(session, account.id, "drop", "high", "P2", "dropped", "bob", None, now)
    bob = client("bob")
    by_name = bob.get("/portfolio?sort=name").text
    assert by_name.index("Alpha Corp") < by_name.index("Zulu Corp")
    by_name_down = bob.get("/portfolio?sort=-name").text
    assert by_name_down.index("Zulu Corp") < by_name_down.index("Alpha Corp")
