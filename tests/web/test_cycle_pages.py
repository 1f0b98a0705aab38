"""`/cycles/{id}`: findings added and closed, decisions taken and changed, the cycle closed, each through the CLI's
cycle services as the signed-in user: the permission table's cells (allowed and refused), CSRF, hostile text
inert, the audit chain saying `via web`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import (
    AuditEntry,
    CycleDecision,
    CycleEvent,
    CycleFinding,
    Escalation,
    ReviewCycle,
    User,
)
from tests.conftest import NOW, Factory
from tests.web.conftest import Client, csrf_of, give_passwords, post, version_of

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


# --- editing a finding, evidence downloads, start, export and verify (the CLI's other cycle commands) ------------

FINDING_VERSION = re.compile(r'findings/(\d+)/edit" class="rows-form">\s*<input type="hidden" name="csrf" '
                             r'value="[^"]+"><input type="hidden" name="version" value="([0-9a-f]+)">')


def finding_version_of(client: Any, cycle_id: int, finding_id: int) -> str:
    """The version the page's edit form of the finding carries (what the editor read)."""
    found = dict(FINDING_VERSION.findall(client.get(f"/cycles/{cycle_id}").text))
    return found[str(finding_id)]


def edit_form(version: str, **fields: str) -> dict[str, str]:
    form = {"kind": "data", "detail": "CRM export missed three accounts", "action": "re-run the export",
            "owner": "bob", "due": "2026-12-15", "version": version}
    return form | fields


@pytest.mark.parametrize(("who", "allowed"), CELLS)
def test_edit_a_finding_by_the_permission_table(cycle: int, client: Client, database: Database, who: str,
                                                allowed: bool) -> None:
    finding = add_finding(database, cycle)
    version = finding_version_of(client("bob"), cycle, finding)  # those refused see no form to take it from
    response = post(client(who), f"/cycles/{cycle}/findings/{finding}/edit", edit_form(version),
                    page=f"/cycles/{cycle}")
    assert response.status_code == (303 if allowed else 403)
    expected = "CRM export missed three accounts" if allowed else "CRM export missed two accounts"
    assert findings(database, cycle) == [(expected, "open", None)]
    with database.transaction() as session:
        row = session.get(CycleFinding, finding)
        assert row is not None
        assert (row.corrective_action, row.owner, str(row.due)) == (
            ("re-run the export", "bob", "2026-12-15") if allowed else (None, None, "None"))


def test_the_edit_form_is_offered_only_to_those_the_table_allows(cycle: int, client: Client,
                                                                 database: Database) -> None:
    finding = add_finding(database, cycle)
    for who in ("bob", "maria", "hank"):
        assert f'action="/cycles/{cycle}/findings/{finding}/edit"' in client(who).get(f"/cycles/{cycle}").text
    for who in ("olga", "rita"):
        assert "/edit" not in client(who).get(f"/cycles/{cycle}").text


def test_an_edit_of_a_finding_changed_since_it_was_read_is_a_conflict(cycle: int, client: Client,
                                                                      database: Database) -> None:
    finding = add_finding(database, cycle)
    bob, maria, page = client("bob"), client("maria"), f"/cycles/{cycle}"
    read_by_bob = finding_version_of(bob, cycle, finding)
    read_by_maria = finding_version_of(maria, cycle, finding)
    first = post(maria, f"{page}/findings/{finding}/edit", edit_form(read_by_maria, detail="maria's words"),
                 page=page)
    assert first.status_code == 303
    late = post(bob, f"{page}/findings/{finding}/edit", edit_form(read_by_bob, detail="bob's words"), page=page)
    assert late.status_code == 409 and "changed since you read it" in late.text
    assert findings(database, cycle) == [("maria's words", "open", None)]
    again = post(bob, f"{page}/findings/{finding}/edit",
                 edit_form(finding_version_of(bob, cycle, finding), detail="bob's words"), page=page)
    assert again.status_code == 303  # read again, then saved
    assert findings(database, cycle) == [("bob's words", "open", None)]


def test_an_edit_needs_the_csrf_token_and_a_draft(cycle: int, client: Client, database: Database) -> None:
    finding = add_finding(database, cycle)
    bob, path = client("bob"), f"/cycles/{cycle}/findings/{finding}/edit"
    form = edit_form(finding_version_of(bob, cycle, finding), detail="no token")
    forged = bob.post(path, data=form | {"csrf": "forged"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert bob.post(path, data=form).status_code == 403
    assert findings(database, cycle) == [("CRM export missed two accounts", "open", None)]
    _submitted(database, cycle)
    refused = post(bob, path, form | {"detail": "after submit"}, page=f"/cycles/{cycle}")
    assert refused.status_code == 403 and "only a draft changes" in refused.text
    assert post(bob, f"/cycles/{cycle + 1}/findings/{finding}/edit", form, page=f"/cycles/{cycle}").status_code == 404
    assert findings(database, cycle) == [("CRM export missed two accounts", "open", None)]


def test_hostile_text_edited_into_a_finding_renders_inert(cycle: int, client: Client, database: Database) -> None:
    finding = add_finding(database, cycle)
    bob, page = client("bob"), f"/cycles/{cycle}"
    breakout = "</textarea><script>alert('edit')</script>"
    form = edit_form(finding_version_of(bob, cycle, finding), detail=breakout, action='"><img src=x onerror=alert(2)>')
    assert post(bob, f"{page}/findings/{finding}/edit", form, page=page).status_code == 303
    text = client("maria").get(page).text
    assert "<script>alert('edit')" not in text and "<img src=x" not in text
    assert "&lt;/textarea&gt;&lt;script&gt;alert(&#39;edit&#39;)&lt;/script&gt;" in text
    with database.transaction() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        event = session.scalars(select(CycleEvent).order_by(CycleEvent.id.desc())).first()
    assert entry is not None and entry.actor.startswith("bob via web session ")
    assert event is not None and event.comment is not None
    assert event.comment.startswith(f'#{finding} edited: detail "CRM export missed two accounts" -> "{breakout}"')


@pytest.fixture
def evidence(cycle: int, database: Database, tmp_path: Path) -> dict[str, bytes]:
    """The scope step of the cycle done by bob with two evidence files: a PDF and an HTML page whose name would
    break a header if it were pasted in."""
    from pulsecheck.workflow.cycles import CycleSettings, run_step

    files = {"scope notes.pdf": b"%PDF-1.4 scope", 'x";\r\nSet-Cookie: a=b <é>.html': b"<script>alert(1)</script>"}
    paths = []
    for name, content in files.items():
        path = tmp_path / name.replace("\r\n", " ")
        path.write_bytes(content)
        paths.append(str(path))
    with database.transaction() as session:
        bob = session.scalars(select(User).where(User.name == "bob")).one()
        run_step(session, cycle, "scope", bob, NOW, CycleSettings(), None, paths, 1 << 20)
    return {name.replace("\r\n", " "): content for name, content in files.items()}


def test_step_evidence_downloads_as_an_attachment(cycle: int, evidence: dict[str, bytes], client: Client) -> None:
    rita = client("rita")  # anyone who may view the cycle: rita has no part in it
    page = rita.get(f"/cycles/{cycle}").text
    assert f'href="/cycles/{cycle}/steps/scope/evidence/1"' in page
    pdf = rita.get(f"/cycles/{cycle}/steps/scope/evidence/1")
    assert pdf.status_code == 200 and pdf.content == evidence["scope notes.pdf"]
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == (
        "attachment; filename=\"scope_notes.pdf\"; filename*=UTF-8''scope%20notes.pdf")
    assert pdf.headers["x-content-type-options"] == "nosniff"
    html = rita.get(f"/cycles/{cycle}/steps/scope/evidence/2")
    name = 'x"; Set-Cookie: a=b <é>.html'
    assert html.status_code == 200 and html.content == evidence[name]
    assert html.headers["content-type"] == "application/octet-stream"  # never rendered in this origin
    assert "a=b" not in html.headers.get("set-cookie", "")  # the name cannot add a header
    assert html.headers["content-disposition"] == (
        "attachment; filename=\"x_Set-Cookie_a_b_.html\"; "
        "filename*=UTF-8''x%22%3B%20Set-Cookie%3A%20a%3Db%20%3C%C3%A9%3E.html")
    assert rita.get(f"/cycles/{cycle}/steps/scope/evidence/3").status_code == 404
    assert rita.get(f"/cycles/{cycle}/steps/data/evidence/1").status_code == 404
    assert rita.get(f"/cycles/{cycle}/steps/gossip/evidence/1").status_code == 422
    assert client().get(f"/cycles/{cycle}/steps/scope/evidence/1").status_code in (303, 401)  # signed out


def test_another_cycles_evidence_is_not_found_under_this_cycle(cycle: int, evidence: dict[str, bytes],
                                                               client: Client, database: Database) -> None:
    from pulsecheck.workflow.cycles import start

    with database.transaction() as session:
        hank = session.scalars(select(User).where(User.name == "hank")).one()
        other = start(session, "2026-11", [], "hank", hank, NOW).id
    bob = client("bob")
    assert bob.get(f"/cycles/{cycle}/steps/scope/evidence/1").status_code == 200
    missing = bob.get(f"/cycles/{other}/steps/scope/evidence/1")
    assert missing.status_code == 404 and b"%PDF" not in missing.content
    assert bob.get(f"/cycles/{other + 1}/steps/scope/evidence/1").status_code == 404


# cycle.start: reviewer, manager, admin (olga is ops)
START_CELLS = [("bob", True), ("maria", True), ("rita", True), ("olga", False)]


@pytest.mark.parametrize(("who", "allowed"), START_CELLS)
def test_start_a_cycle_by_the_permission_table(team: Factory, database: Database, now: Any, client: Client,
                                               who: str, allowed: bool) -> None:
    team.user("rita", "reviewer")
    give_passwords(database, now, "rita")
    user = client(who)
    assert ('action="/cycles/start"' in user.get("/cycles").text) is allowed
    response = post(user, "/cycles/start", {"period": "2026-11", "segments": ""}, page="/cycles")
    assert response.status_code == (303 if allowed else 403)
    with database.transaction() as session:
        started = [(c.period, c.owner) for c in session.scalars(select(ReviewCycle))]
    assert started == ([("2026-11", who)] if allowed else [])
    if allowed:
        assert response.headers["location"] == "/cycles/1"
    assert post(user, "/cycles/start", {"period": "2026-13"}, page="/cycles").status_code == 422  # as the CLI: 2
    assert user.post("/cycles/start", data={"period": "2026-11", "csrf": "forged"}).status_code == 403


def test_the_export_and_verification_are_offered_to_anyone_signed_in(cycle: int, client: Client) -> None:
    rita = client("rita")
    exported = rita.get(f"/cycles/{cycle}/export?format=json")
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/json"
    assert exported.headers["content-disposition"].startswith(f'attachment; filename="cycle-{cycle}.json"')
    data = exported.json()
    assert (data["id"], data["state"], data["verification"]) == (cycle, "draft", {"problems": [], "ok": True})
    html = rita.get(f"/cycles/{cycle}/export?format=html")
    assert html.headers["content-disposition"].startswith("attachment;") and "<html" in html.text
    assert rita.get(f"/cycles/{cycle}/export?format=exe").status_code == 422
    verified = rita.get(f"/cycles/{cycle}/verify")
    assert verified.status_code == 200 and "not sealed yet (draft), audit trail consistent" in verified.text


def test_a_step_done_on_the_web_stores_uploaded_evidence(cycle: int, client: Client) -> None:
    bob, page = client("bob"), f"/cycles/{cycle}"
    assert 'enctype="multipart/form-data"' in bob.get(page).text
    token = csrf_of(bob, page)
    files = [("files", ("scope check.csv", b"account,owner\nACME,bob\n", "text/csv")),
             ("files", ("", b"", "application/octet-stream"))]  # a second input left empty
    done = bob.post(f"{page}/step", data={"csrf": token, "step": "scope", "evidence": "https://wiki.example.com/q4"},
                    files=files)
    assert done.status_code == 303, done.text
    text = bob.get(page).text
    assert f'href="{page}/steps/scope/evidence/1"' in text and f'href="{page}/steps/scope/evidence/2"' not in text
    got = bob.get(f"{page}/steps/scope/evidence/1")
    assert got.content == b"account,owner\nACME,bob\n" and got.headers["content-type"].startswith("text/csv")
    forged = bob.post(f"{page}/step", data={"csrf": "forged", "step": "data"}, files=files[:1])
    assert forged.status_code == 403
