"""`/cycles/{id}`: findings added and closed, decisions taken and changed, the cycle closed, each through the CLI's
cycle services as the signed-in user: the permission table's cells (allowed and refused), CSRF, hostile text
inert, the audit chain saying `via web`."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import AuditEntry, CycleDecision, CycleFinding, Escalation, ReviewCycle, User
from tests.conftest import NOW, Factory
from tests.web.conftest import Client, give_passwords, post, version_of

HOSTILE = "<script>alert('finding')</script>"
NOTED: dict[str, int] = {}  # database URL -> the last finding the cycle's start noted by itself


@pytest.fixture
def cycle(team: Factory, database: Database, now: Any) -> int:
    """A draft cycle of every segment (ACME in scope), owned by bob; rita: a reviewer with no part in it."""
    from pulsecheck.workflow.cycles import start

    team.user("rita", "reviewer")
    give_passwords(database, now, "rita")
    with database.transaction() as session:
        bob = session.scalar(select(User).where(User.name == "bob"))
        assert bob is not None
        started = start(session, "2026-Q4", [], "bob", bob, now).id
        NOTED[database.url] = session.scalar(select(func.max(CycleFinding.id))) or 0
        return started


def findings(database: Database, cycle_id: int) -> list[tuple[str, str, str | None]]:
    """The findings people added to the cycle (not those the start noted: no snapshot, no model, ...)."""
    with database.transaction() as session:
        query = select(CycleFinding).where(CycleFinding.cycle_id == cycle_id, CycleFinding.id > NOTED[database.url])
        return [(f.detail, f.status, f.close_note) for f in session.scalars(query.order_by(CycleFinding.id))]


def decisions(database: Database, cycle_id: int) -> list[tuple[str, str, str | None]]:
    with database.transaction() as session:
        rows = session.scalars(select(CycleDecision).where(CycleDecision.cycle_id == cycle_id))
        return [(d.decision, d.owner, d.reason) for d in rows]


def add_finding(database: Database, cycle_id: int, detail: str = "CRM export missed two accounts") -> int:
    from pulsecheck.workflow.cycles import add_finding as add

    with database.transaction() as session:
        bob = session.scalar(select(User).where(User.name == "bob"))
        assert bob is not None
        return add(session, cycle_id, "data", detail, bob, NOW).id


# cycle.work: its_owner, manager, admin. bob owns the cycle; maria is his manager, hank another manager; olga is
# ops and rita a reviewer with no part in it.
CELLS = [("bob", True), ("maria", True), ("hank", True), ("olga", False), ("rita", False)]


@pytest.mark.parametrize(("who", "allowed"), CELLS)
def test_add_a_finding_by_the_permission_table(cycle: int, client: Client, database: Database, who: str,
                                               allowed: bool) -> None:
    form = {"kind": "data", "detail": "CRM export missed two accounts", "action": "re-run the export",
            "owner": "bob", "due": "2026-12-15"}
    response = post(client(who), f"/cycles/{cycle}/findings/add", form, page=f"/cycles/{cycle}")
    assert response.status_code == (303 if allowed else 403)
    assert findings(database, cycle) == ([("CRM export missed two accounts", "open", None)] if allowed else [])


@pytest.mark.parametrize(("who", "allowed"), CELLS)
def test_close_a_finding_by_the_permission_table(cycle: int, client: Client, database: Database, who: str,
                                                 allowed: bool) -> None:
    finding = add_finding(database, cycle)
    response = post(client(who), f"/cycles/{cycle}/findings/{finding}/close", {"note": "export re-run"},
                    page=f"/cycles/{cycle}")
    assert response.status_code == (303 if allowed else 403)
    expected = ("closed", "export re-run") if allowed else ("open", None)
    assert findings(database, cycle)[0][1:] == expected


@pytest.mark.parametrize(("who", "allowed"), CELLS)
def test_decide_by_the_permission_table(cycle: int, client: Client, database: Database, who: str,
                                        allowed: bool) -> None:
    page = f"/cycles/{cycle}"
    form = {"account": "ACME", "decision": "monitor", "owner": "bob", "reason": "renewal call booked",
            "version": version_of(client("bob"), page)}  # those refused see no form to take it from
    response = post(client(who), f"/cycles/{cycle}/decide", form, page=page)
    assert response.status_code == (303 if allowed else 403)
    assert decisions(database, cycle) == ([("monitor", "bob", "renewal call booked")] if allowed else [])


def test_the_page_offers_the_forms_only_to_those_the_table_allows(cycle: int, client: Client) -> None:
    page = f"/cycles/{cycle}"
    for who in ("bob", "maria"):
        text = client(who).get(page).text
        assert f'action="/cycles/{cycle}/findings/add"' in text and f'action="/cycles/{cycle}/decide"' in text
    for who in ("olga", "rita"):
        text = client(who).get(page).text
        assert "/findings/add" not in text and "/decide" not in text and "/step" not in text
    assert f'action="/cycles/{cycle}/submit"' in client("bob").get(page).text
    assert f'action="/cycles/{cycle}/submit"' not in client("maria").get(page).text  # only the owner submits


def test_a_decision_is_changed_by_deciding_again_and_escalate_opens_an_escalation(
    cycle: int, client: Client, database: Database
) -> None:
    bob, page = client("bob"), f"/cycles/{cycle}"
    first = {"account": "ACME", "decision": "monitor", "owner": "bob", "reason": "call booked"}
    assert post(bob, f"{page}/decide", first | {"version": version_of(bob, page)}, page=page).status_code == 303
    again = {"account": "ACME", "decision": "escalate", "owner": "maria", "reason": "champion left"}
    assert post(bob, f"{page}/decide", again | {"version": version_of(bob, page)}, page=page).status_code == 303
    assert decisions(database, cycle) == [("escalate", "maria", "champion left")]
    with database.transaction() as session:
        opened = session.scalars(select(Escalation).where(Escalation.rule_id == f"cycle-{cycle}")).all()
        assert [(e.owner, e.reason) for e in opened] == [("maria", "champion left")]
    stale = post(bob, f"{page}/decide", first | {"version": "1"}, page=page)
    assert stale.status_code == 409  # the page was shown before the cycle changed
    assert post(bob, f"{page}/decide", first | {"account": "NOPE", "version": version_of(bob, page)},
                page=page).status_code == 404
    monitor_without_reason = first | {"reason": "", "version": version_of(bob, page)}
    assert post(bob, f"{page}/decide", monitor_without_reason, page=page).status_code == 422


def test_a_submitted_cycle_takes_no_more_findings_even_from_its_owner(cycle: int, client: Client,
                                                                      database: Database) -> None:
    with database.transaction() as session:
        found = session.get(ReviewCycle, cycle)
        assert found is not None
        found.state = "submitted"
    refused = post(client("bob"), f"/cycles/{cycle}/findings/add", {"kind": "data", "detail": "late"},
                   page=f"/cycles/{cycle}")
    assert refused.status_code == 403 and "only a draft changes" in refused.text
    assert findings(database, cycle) == []


def test_forms_without_the_csrf_token_are_refused(cycle: int, client: Client, database: Database) -> None:
    bob = client("bob")
    finding = add_finding(database, cycle)
    version = version_of(bob, f"/cycles/{cycle}")
    for path, form in [
        (f"/cycles/{cycle}/findings/add", {"kind": "data", "detail": "no token"}),
        (f"/cycles/{cycle}/findings/{finding}/close", {"note": "no token"}),
        (f"/cycles/{cycle}/decide", {"account": "ACME", "decision": "monitor", "owner": "bob", "reason": "x",
                                     "version": version}),
        (f"/cycles/{cycle}/step", {"step": "scope"}),
        (f"/cycles/{cycle}/submit", {"version": version}),
    ]:
        response = bob.post(path, data=form | {"csrf": "forged"})
        assert response.status_code == 403 and "CSRF" in response.text, path
        assert bob.post(path, data=form).status_code == 403, path
    assert findings(database, cycle) == [("CRM export missed two accounts", "open", None)]
    assert decisions(database, cycle) == []


def test_hostile_finding_text_renders_inert_and_the_audit_says_via_web(cycle: int, client: Client,
                                                                       database: Database) -> None:
    bob = client("bob")
    form = {"kind": "process", "detail": HOSTILE, "action": "<img src=x onerror=alert(1)>", "owner": "bob"}
    assert post(bob, f"/cycles/{cycle}/findings/add", form, page=f"/cycles/{cycle}").status_code == 303
    page = client("maria").get(f"/cycles/{cycle}").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#39;finding&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    with database.transaction() as session:
        actor = session.scalars(select(AuditEntry.actor).order_by(AuditEntry.seq.desc())).first()
    assert actor is not None and actor.startswith("bob via web session ")


def test_bad_input_is_refused_with_the_services_message(cycle: int, client: Client, database: Database) -> None:
    bob, page = client("bob"), f"/cycles/{cycle}"
    bad_kind = post(bob, f"{page}/findings/add", {"kind": "gossip", "detail": "x"}, page=page)
    assert bad_kind.status_code == 422 and "choose from data, scoring, process, other" in bad_kind.text
    bad_due = post(bob, f"{page}/findings/add", {"kind": "data", "detail": "x", "action": "y", "due": "soon"},
                   page=page)
    assert bad_due.status_code == 422 and "due:" in bad_due.text
    other = add_finding(database, cycle)
    assert post(bob, f"/cycles/{cycle + 1}/findings/{other}/close", {"note": "n"}, page=page).status_code == 404
    assert findings(database, cycle) == [("CRM export missed two accounts", "open", None)]


def test_an_approved_cycle_is_closed_by_its_owner(cycle: int, client: Client, database: Database) -> None:
    with database.transaction() as session:
        found = session.get(ReviewCycle, cycle)
        assert found is not None
        found.state = "approved"
    page, bob = f"/cycles/{cycle}", client("bob")
    assert f'action="{page}/close"' in bob.get(page).text
    version = version_of(bob, page)
    assert post(client("rita"), f"{page}/close", {"version": version}, page=page).status_code == 403
    assert post(bob, f"{page}/close", {"version": version}, page=page).status_code == 303
    with database.transaction() as session:
        closed = session.get(ReviewCycle, cycle)
        assert closed is not None and closed.state == "closed"


def _submitted(database: Database, cycle_id: int) -> None:
    with database.transaction() as session:
        found = session.get(ReviewCycle, cycle_id)
        assert found is not None
        found.state = "submitted"


# cycle.reject: manager, admin (with a comment); bob owns the cycle
REJECT_CELLS = [("bob", False), ("maria", True), ("hank", True), ("olga", False), ("rita", False)]


@pytest.mark.parametrize(("who", "allowed"), REJECT_CELLS)
def test_reject_by_the_permission_table(cycle: int, client: Client, database: Database, who: str,
                                        allowed: bool) -> None:
    _submitted(database, cycle)
    page = f"/cycles/{cycle}"
    version = version_of(client("maria"), page)
    response = post(client(who), f"{page}/reject", {"version": version, "comment": "findings lack owners"},
                    page=page)
    assert response.status_code == (303 if allowed else 403)
    with database.transaction() as session:
        found = session.get(ReviewCycle, cycle)
        assert found is not None and found.state == ("draft" if allowed else "submitted")


def test_approval_is_offered_to_a_manager_never_to_the_owner(cycle: int, client: Client, database: Database) -> None:
    _submitted(database, cycle)
    page = f"/cycles/{cycle}"
    assert f'action="{page}/approve"' in client("maria").get(page).text
    owner_page = client("bob").get(page).text
    assert f'action="{page}/approve"' not in owner_page and "/reject" not in owner_page
    version = version_of(client("maria"), page)
    refused = post(client("bob"), f"{page}/approve", {"version": version}, page=page)
    assert refused.status_code == 403 and "only a manager or an admin may approve" in refused.text
    with database.transaction() as session:  # a manager who owns a cycle does not approve it either
        from pulsecheck.workflow.cycles import start

        hank = session.scalars(select(User).where(User.name == "hank")).one()
        own = start(session, "2026-11", [], "hank", hank, NOW).id
    _submitted(database, own)
    assert f'action="/cycles/{own}/approve"' not in client("hank").get(f"/cycles/{own}").text
    own_version = version_of(client("maria"), f"/cycles/{own}")
    four_eyes = post(client("hank"), f"/cycles/{own}/approve", {"version": own_version}, page=f"/cycles/{own}")
    assert four_eyes.status_code == 403 and "four-eyes" in four_eyes.text
    no_comment = post(client("maria"), f"{page}/reject", {"version": version}, page=page)
    assert no_comment.status_code == 403  # a rejection needs a comment (the guard refuses it)
