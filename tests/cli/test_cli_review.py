"""The review, users and accounts commands as a user runs them: output, --json shapes, exit codes, errors."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pulsecheck.app import os_login
from tests.conftest import as_json, error, ok, page_items

ACCOUNTS_CSV = (
    "external_id,name,segment,tier,arr,owner,manager,renewal_date,contract_start,stage\n"
    "ACME,Acme Corp,enterprise,gold,120000,bob,maria,2027-01-15,2024-01-01,live\n"
    "GLOBEX,Globex,smb,,9000,bob,,,,trial\n"
)
FORM = {
    "account_goals": "Expand to 500 seats",
    "goal_summary": "320 seats, on track",
    "overall_assessment": "Healthy but exposed to a champion change",
    "next_review_date": "2027-02-22",
    "employee_comments": "Usage is up",
    "risks": [{"description": "Champion leaving", "severity": "high", "evidence": "LinkedIn post",
               "actions": [{"description": "Build a second champion", "owner": "bob",
                            "due_date": "2026-12-20"}]}],
}
ACCOUNT_KEYS = ("id", "name", "segment", "tier", "arr", "owner", "manager", "renewal_date", "contract_start",
                "stage")
REVIEW_KEYS = {
    "id", "account", "account_name", "state", "kind", "priority", "reviewer", "approver", "due_at",
    "created_at", "baseline", "account_goals", "goal_summary", "overall_assessment", "next_review_date",
    "employee_comments", "manager_comments", "risks", "actions", "signatures", "signature_problems",
}


@pytest.fixture
def team(factory: Any) -> None:
    factory.team()


@pytest.fixture
def draft(team: None, run: Any, tmp_path: Path) -> int:
    """A draft review of ACME by bob, every field filled from a file."""
    assert "review 1 opened for ACME" in ok(run("--as", "bob", "review", "new", "ACME"))
    path = tmp_path / "form.yaml"
    path.write_text(yaml.safe_dump(FORM))
    assert ok(run("--as", "bob", "review", "fill", "1", str(path))) == f"review 1: filled from {path}\n"
    return 1


@pytest.fixture
def approved(draft: int, run: Any) -> int:
    ok(run("--as", "bob", "review", "submit", "1"))
    ok(run("--as", "maria", "review", "approve", "1", "--comment", "Agreed"))
    return draft


def show(run: Any, review_id: int = 1) -> dict[str, Any]:
    data: dict[str, Any] = as_json(run("review", "show", str(review_id), "--json"))
    return data


# --- users and accounts -------------------------------------------------------------------------------


def test_users_add_and_list(run: Any) -> None:
    assert ok(run("users", "add", "maria", "--role", "manager", "--email", "maria@example.com")) == (
        "user maria: manager\n")
    added = run("users", "add", "bob", "--role", "reviewer", "--manager", "maria")
    assert ok(added) == "user bob: reviewer\n"
    assert ok(run("users", "add", "maria", "--role", "admin")) == "user maria: admin,manager\n"
    data = [u for u in page_items(run("users", "list", "--json")) if "admin" not in u["roles"] or u["name"] == "maria"]
    assert [set(u) for u in data] == [{"name", "roles", "email", "manager", "webhook"}] * 2
    assert data == [
        {"name": "bob", "roles": ["reviewer"], "email": None, "manager": "maria", "webhook": None},
        {"name": "maria", "roles": ["admin", "manager"], "email": "maria@example.com", "manager": None,
         "webhook": None},
    ]
    table = ok(run("users", "list"))
    assert "maria@example.com" in table and "admin, manager" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "add", "bob", "--role", "reviewer", "--manager", "ghost"],
         "--manager: unknown user 'ghost'"),
        (["users", "add", "bob", "--role", "reviewer", "--email", "bob-at-example"], "not an email address"),
        (["users", "add", "bob", "--role", "boss"], "'boss' is not one of"),
    ],
)
def test_users_add_bad_input(run: Any, args: list[str], message: str) -> None:
    assert message in error(run(*args), 2)
    assert [u["name"] for u in page_items(run("users", "list", "--json"))] == [os_login()]  # only the fixture's admin


def test_accounts_import_list_show(factory: Any, run: Any, tmp_path: Path) -> None:
    factory.user("maria", "manager")
    factory.user("bob", "reviewer")
    path = tmp_path / "accounts.csv"
    path.write_text(ACCOUNTS_CSV)
    assert ok(run("accounts", "import", str(path))) == f"{path}: 2 created, 0 updated\n"
    assert ok(run("accounts", "import", str(path))) == f"{path}: 0 created, 2 updated\n"
    listed = page_items(run("accounts", "list", "--json"))
    assert [a["id"] for a in listed] == ["ACME", "GLOBEX"]
    assert set(listed[0]) == {*ACCOUNT_KEYS, "score", "bucket"}
    assert (listed[0]["score"], listed[0]["bucket"]) == (None, None)  # not scored yet
    assert [a["id"] for a in page_items(run("accounts", "list", "--segment", "smb", "--json"))] == ["GLOBEX"]
    shown = as_json(run("accounts", "show", "ACME", "--json"))
    assert {key: shown[key] for key in ACCOUNT_KEYS} == {
        "id": "ACME", "name": "Acme Corp", "segment": "enterprise", "tier": "gold", "arr": 120000.0,
        "owner": "bob", "manager": "maria", "renewal_date": "2027-01-15", "contract_start": "2024-01-01",
        "stage": "live",
    }
    text = ok(run("accounts", "show", "ACME"))
    assert "renewal_date: 2027-01-15" in text and "owner: bob" in text
    assert "Acme Corp" in ok(run("accounts", "list"))


def test_an_update_keeps_what_the_file_leaves_out(factory: Any, run: Any, tmp_path: Path) -> None:
    factory.user("maria", "manager")
    factory.user("bob", "reviewer")
    path = tmp_path / "accounts.csv"
    path.write_text(ACCOUNTS_CSV)
    ok(run("accounts", "import", str(path)))
    update = tmp_path / "renewals.json"  # a CRM export with only the renewal dates
    update.write_text(json.dumps([{"external_id": "ACME", "name": "Acme Corp", "renewal_date": "2027-02-01"}]))
    assert ok(run("accounts", "import", str(update))) == f"{update}: 0 created, 1 updated\n"
    shown = as_json(run("accounts", "show", "ACME", "--json"))
    kept = (shown["renewal_date"], shown["owner"], shown["arr"], shown["tier"])
    assert kept == ("2027-02-01", "bob", 120000.0, "gold")
    cleared = tmp_path / "cleared.csv"  # an empty cell in a column the file has does clear it
    cleared.write_text("external_id,name,stage\nACME,Acme Corp,\n")
    ok(run("accounts", "import", str(cleared)))
    shown = as_json(run("accounts", "show", "ACME", "--json"))
    assert (shown["stage"], shown["owner"]) == (None, "bob")


def test_accounts_import_with_a_bad_row_imports_nothing(factory: Any, run: Any, tmp_path: Path) -> None:
    factory.user("bob", "reviewer")
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps([{"external_id": "ACME", "name": "Acme", "owner": "bob"},
                                {"external_id": "GLOBEX", "name": "Globex", "renewal_date": "15/01/2027"}]))
    assert error(run("accounts", "import", str(path)), 2) == (
        f"error: {path}: row 2, column 'renewal_date': '15/01/2027' is not a date (YYYY-MM-DD)")
    assert page_items(run("accounts", "list", "--json")) == []


def test_accounts_show_unknown(run: Any) -> None:
    assert error(run("accounts", "show", "NOPE"), 2) == "error: unknown account 'NOPE'"


def test_accounts_list_by_bucket_of_the_latest_score(team: None, factory: Any, database: Any, run: Any,
                                                     now: Any) -> None:
    from datetime import timedelta

    from pulsecheck.storage.models import Account, ScoreSnapshot, ScoringModelVersion

    factory.account("GLOBEX", owner="bob")
    with database.transaction() as session:
        model = ScoringModelVersion(version="1", content="", sha256="0" * 64, status="approved")
        session.add(model)
        session.flush()
        ids = {a.external_id: a.id for a in session.query(Account)}
        snapshots = (("ACME", 1, 85.0, "healthy"), ("GLOBEX", 1, 30.0, "unhealthy"),
                     ("GLOBEX", 40, 90.0, "healthy"))  # GLOBEX was healthy, but not any more
        for account, days_ago, score, bucket in snapshots:
            session.add(ScoreSnapshot(account_id=ids[account], as_of=now - timedelta(days=days_ago),
                                      score=score, bucket=bucket, model_id=model.id, components=[]))
    healthy = page_items(run("accounts", "list", "--bucket", "healthy", "--json"))
    assert [(a["id"], a["score"], a["bucket"]) for a in healthy] == [("ACME", 85.0, "healthy")]
    unhealthy = page_items(run("accounts", "list", "--bucket", "unhealthy", "--json"))
    assert [a["id"] for a in unhealthy] == ["GLOBEX"]


# --- a review from new to closed ----------------------------------------------------------------------


def test_review_built_step_by_step_then_approved_and_closed(team: None, run: Any) -> None:
    assert ok(run("--as", "bob", "review", "new", "ACME", "--due", "2026-12-01", "--priority", "P2")) == (
        "review 1 opened for ACME (reviewer bob, approver maria, due 2026-12-01)\n")
    for field, value in (("account_goals", "Expand to 500 seats"), ("goal_summary", "320 seats"),
                         ("overall_assessment", "Healthy"), ("next_review_date", "2027-02-22")):
        assert ok(run("--as", "bob", "review", "set", "1", field, value)) == f"review 1: {field} set\n"
    assert "risk 1 has no mitigation action" not in error(run("--as", "bob", "review", "submit", "1"), 1)
    assert ok(run("--as", "bob", "review", "risk", "add", "1", "Champion leaving", "--severity", "high",
                  "--evidence", "LinkedIn")) == "review 1: risk 1 added\n"
    assert error(run("--as", "bob", "review", "submit", "1"), 1) == (
        "error: cannot submit: risk 1 has no mitigation action with an owner and a due date")
    assert ok(run("--as", "bob", "review", "action", "add", "1", "Second champion", "--risk", "1",
                  "--owner", "bob", "--due", "2026-12-20", "--success-criteria", "named sponsor")) == (
        "review 1: action 1 added to risk 1\n")
    assert ok(run("--as", "bob", "review", "submit", "1")) == "review 1: submit -> submitted\n"
    assert ok(run("--as", "maria", "review", "approve", "1", "--comment", "Agreed")) == (
        "review 1: approve -> approved\n")
    assert ok(run("--as", "bob", "review", "close", "1")) == "review 1: close -> closed\n"

    data = show(run)
    assert set(data) == REVIEW_KEYS | {"account_context"}  # one review shown: the account as it is now
    assert (data["state"], data["priority"], data["due_at"][:10], data["manager_comments"]) == (
        "closed", "P2", "2026-12-01", "Agreed")
    assert data["risks"] == [{"number": 1, "description": "Champion leaving", "evidence": "LinkedIn",
                              "category": "customer", "severity": "high", "impact": None}]
    assert data["actions"] == [{"number": 1, "risk": 1, "description": "Second champion", "owner": "bob",
                                "due_date": "2026-12-20", "success_criteria": "named sponsor",
                                "status": "open"}]
    assert data["signatures"]["employee"]["by"] == "bob" and data["signatures"]["manager"]["by"] == "maria"
    history = as_json(run("review", "history", "1", "--json"))
    assert [(e["event"], e["from"], e["to"], e["actor"], e["cause"]) for e in history] == [
        ("open", None, "draft", "bob", "user"),
        ("submit", "draft", "submitted", "bob", "user"),
        ("approve", "submitted", "approved", "maria", "user"),
        ("close", "approved", "closed", "bob", "user"),
    ]
    assert set(history[0]) == {"event", "from", "to", "actor", "comment", "at", "cause"}
    table = ok(run("review", "history", "1"))
    assert "approve" in table and "maria" in table


def test_review_show_markdown_and_list(draft: int, run: Any) -> None:
    text = ok(run("review", "show", "1"))
    assert text.startswith("# Health review 1: Acme (ACME)")
    assert "Expand to 500 seats" in text and "Champion leaving" in text
    listed = page_items(run("review", "list", "--json"))
    assert [(r["id"], r["state"], r["reviewer"]) for r in listed] == [(1, "draft", "bob")]
    assert "history" not in listed[0]
    assert page_items(run("review", "list", "--state", "submitted", "--json")) == []
    assert [r["id"] for r in page_items(run("--as", "maria", "review", "list", "--mine", "--json"))] == [1]
    assert page_items(run("--as", "olga", "review", "list", "--mine", "--json")) == []
    assert [r["id"] for r in page_items(run("review", "list", "--account", "ACME", "--json"))] == [1]
    assert "ACME" in ok(run("review", "list"))


def test_reject_then_resubmit(draft: int, run: Any) -> None:
    ok(run("--as", "bob", "review", "submit", "1"))
    assert error(run("--as", "maria", "review", "reject", "1"), 1) == (
        "error: cannot reject: a comment is required (--comment TEXT)")
    assert ok(run("--as", "maria", "review", "reject", "1", "--comment", "Add evidence")) == (
        "review 1: reject -> draft\n")
    data = show(run)
    assert data["signatures"]["employee"] == {"by": None, "at": None, "digest": None}
    assert as_json(run("review", "history", "1", "--json"))[-1]["comment"] == "Add evidence"
    assert ok(run("--as", "bob", "review", "submit", "1")) == "review 1: submit -> submitted\n"


def test_reopen_and_withdraw(approved: int, run: Any) -> None:
    assert "may reopen, not bob" in error(run("--as", "bob", "review", "reopen", "1"), 1)
    assert ok(run("--as", "maria", "review", "reopen", "1")) == "review 1: reopen -> draft\n"
    assert show(run)["signatures"]["manager"]["by"] is None
    assert error(run("--as", "maria", "review", "withdraw", "1"), 1) == (
        "error: cannot withdraw: a comment is required (--comment TEXT)")
    assert ok(run("--as", "maria", "review", "withdraw", "1", "--comment", "account churned")) == (
        "review 1: withdraw -> closed\n")
    assert error(run("--as", "bob", "review", "set", "1", "goal_summary", "late"), 1) == (
        "error: review 1 is closed and read-only")


def test_close_by_a_stranger_is_refused(approved: int, run: Any) -> None:
    assert error(run("--as", "olga", "review", "close", "1"), 1) == (
        "error: cannot close: only the reviewer (bob), the assigned approver (maria), the reviewer's manager, an admin "
        "or the scheduler may close, not olga")
    assert show(run)["state"] == "approved"


def test_verify_reports_edits_after_signing(approved: int, run: Any, database: Any) -> None:
    assert ok(run("review", "verify", "1")) == (
        "ok: review 1: employee, manager signature(s) match, audit trail consistent\n")
    assert as_json(run("review", "verify", "1", "--json")) == {
        "review": 1, "ok": True, "signed": ["employee", "manager"], "problems": [], "signatures": []}
    assert "approved and frozen" in error(run("--as", "bob", "review", "set", "1", "goal_summary", "200 seats"), 1)
    from sqlalchemy import text

    with database.transaction() as session:  # what the CLI refuses, done behind its back
        session.execute(text("UPDATE reviews SET goal_summary = 'Only 200 seats' WHERE id = 1"))
    result = run("review", "verify", "1")
    assert error(result, 1, stdout=(
        "FAIL employee signature of bob no longer matches the content\n"
        "FAIL manager signature of maria no longer matches the content\n"
    )) == "error: review 1 failed verification (2 problem(s))"


def test_export_markdown_and_json(approved: int, run: Any, tmp_path: Path) -> None:
    markdown = ok(run("review", "export", "1"))
    assert markdown.startswith("# Health review 1: Acme (ACME)") and "Agreed" in markdown
    data = json.loads(ok(run("review", "export", "1", "--format", "json")))
    assert set(data) == REVIEW_KEYS | {"account_context", "history"}
    assert [e["event"] for e in data["history"]] == ["open", "submit", "approve"]
    out = tmp_path / "review-1.md"
    assert ok(run("review", "export", "1", "-o", str(out))) == f"wrote {out}\n"
    assert out.read_text() == markdown
    out_json = tmp_path / "review-1.json"
    ok(run("review", "export", "1", "--format", "json", "--output", str(out_json)))
    assert json.loads(out_json.read_text()) == data
    missing = tmp_path / "no-such-dir" / "x.md"
    assert error(run("review", "export", "1", "-o", str(missing)), 2).startswith(f"error: -o {missing}: ")


# --- review edit ---------------------------------------------------------------------------------------

EDITOR_SCRIPT = """\
import subprocess
import sys
import yaml

path = sys.argv[1]
if {raw!r}:  # the same raw text every round (the form on offer may not even be YAML by then)
    text = {raw!r}
else:
    with open(path) as handle:
        form = yaml.safe_load(handle)
    form.update(yaml.safe_load({changes!r}))
    text = yaml.safe_dump(form, sort_keys=False)
with open(path, "w") as handle:
    handle.write(text)
"""


def editor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, changes: str = "{}", raw: str = "") -> None:
    """Point EDITOR at a script that applies `changes` (YAML) to the form, or writes `raw` instead."""
    script = tmp_path / "editor.py"
    script.write_text(EDITOR_SCRIPT.format(changes=changes, raw=raw))
    monkeypatch.setenv("EDITOR", f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")


def test_edit_saves_valid_content(draft: int, run: Any, monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path) -> None:
    editor(monkeypatch, tmp_path, changes="{goal_summary: 400 seats, next_review_date: 2027-03-01}")
    assert ok(run("--as", "maria", "review", "edit", "1")) == "review 1: saved\n"
    data = show(run)
    assert (data["goal_summary"], data["next_review_date"]) == ("400 seats", "2027-03-01")
    assert data["account_goals"] == FORM["account_goals"]
    assert [a["description"] for a in data["actions"]] == ["Build a second champion"]


def test_the_reviewer_can_edit_their_draft(draft: int, run: Any, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    editor(monkeypatch, tmp_path, changes="{goal_summary: 400 seats}")
    assert ok(run("--as", "bob", "review", "edit", "1")) == "review 1: saved\n"
    assert show(run)["goal_summary"] == "400 seats"


@pytest.mark.parametrize(
    ("changes", "raw", "message"),
    [
        ("{colour: red}", "", "error: review 1 form: colour: unknown field"),
        ("{risks: [{description: x, severity: huge}]}", "", "error: review 1 form: risks.0.severity: "),
        ("{next_review_date: soon}", "", "error: review 1 form: next_review_date: "),
        ("{}", "goal_summary: [unclosed\n", "error: review 1 form:2: invalid YAML"),
    ],
)
def test_edit_with_invalid_content_saves_nothing(draft: int, run: Any, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path, changes: str, raw: str,
                                                 message: str) -> None:
    before = show(run)
    editor(monkeypatch, tmp_path, changes=changes, raw=raw)
    assert error(run("--as", "maria", "review", "edit", "1"), 2).startswith(message)
    assert show(run) == before


def test_edit_with_an_impossible_date_is_bad_input(draft: int, run: Any, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    editor(monkeypatch, tmp_path, raw="next_review_date: 2027-02-30\n")
    assert error(run("--as", "maria", "review", "edit", "1"), 2).startswith("error: review 1 form")


FIXING_EDITOR = """\
import pathlib
import sys

path = pathlib.Path(sys.argv[1])
text = path.read_text()
log = pathlib.Path({log!r})
log.write_text(log.read_text() + "---\\n" + text if log.exists() else text)
if text.startswith("# error: "):  # second round: the user's text is kept; fix the date
    path.write_text(text.replace("2027-02-30", "2027-02-28"))
else:  # first round: one good edit and one impossible date
    path.write_text(text.replace("320 seats, on track", "400 seats").replace("2027-02-22", "2027-02-30"))
"""


def test_edit_reopens_with_the_error_on_top_and_the_text_kept(draft: int, run: Any, monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    log = tmp_path / "rounds.txt"
    script = tmp_path / "fixing.py"
    script.write_text(FIXING_EDITOR.format(log=str(log)))
    monkeypatch.setenv("EDITOR", f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")
    assert ok(run("--as", "bob", "review", "edit", "1")) == "review 1: saved\n"
    first, second = log.read_text().split("---\n")
    assert not first.startswith("# error")
    # the second round opens on the error, naming the field, above the user's own edit
    assert second.startswith("# error: review 1 form:")
    assert "next_review_date: 2027-02-30 is not a date" in second.splitlines()[0]
    assert "400 seats" in second and "2027-02-30" in second
    data = show(run)
    assert (data["goal_summary"], data["next_review_date"]) == ("400 seats", "2027-02-28")


def test_edit_given_up_keeps_the_text_in_a_file(draft: int, run: Any, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    before = show(run)
    editor(monkeypatch, tmp_path, changes="{goal_summary: 500 seats, next_review_date: soon}")
    message = error(run("--as", "bob", "review", "edit", "1"), 2)
    assert message.startswith("error: review 1 form: next_review_date: ")
    kept = Path(message.rsplit("your edit is kept in ", 1)[1].rstrip(")"))
    assert "500 seats" in kept.read_text() and "soon" in kept.read_text()
    kept.unlink()
    assert show(run) == before


def test_edit_without_change_saves_nothing(draft: int, run: Any, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    editor(monkeypatch, tmp_path, raw="   \n")
    assert ok(run("--as", "maria", "review", "edit", "1")) == "no change\n"
    assert as_json(run("review", "history", "1", "--json"))[-1]["event"] == "open"


# --- exit codes and error lines ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as", "bob", "review", "set", "1", "colour", "red"],
         "error: unknown field 'colour': choose from "),
        (["--as", "bob", "review", "set", "1", "next_review_date", "2027-02-30"],
         "error: next_review_date: '2027-02-30' is not a date (YYYY-MM-DD)"),
        (["--as", "bob", "review", "new", "GLOBEX", "--due", "next week"],
         "error: --due: 'next week' is not a date (YYYY-MM-DD)"),
        (["--as", "bob", "review", "new", "NOPE"], "error: unknown account 'NOPE'"),
        (["--as", "bob", "review", "new", "GLOBEX", "--reviewer", "ghost"],
         "error: --reviewer: unknown user"),
        (["--as", "bob", "review", "show", "99"], "error: unknown review 99"),
        (["--as", "bob", "review", "submit", "99"], "error: unknown review 99"),
        (["--as", "bob", "review", "show", "one"], "error: Invalid value for 'REVIEW_ID'"),
        (["--as", "bob", "review", "action", "add", "1", "x", "--risk", "7"],
         "error: --risk 7: review 1 has no"),
        (["--as", "bob", "review", "action", "add", "1", "x", "--risk", "1", "--due", "2026-13-01"],
         "error: --due: '2026-13-01' is not a date"),
        (["--as", "bob", "review", "risk", "add", "1", "x", "--severity", "huge"], "error: Invalid value"),
        (["--as", "bob", "review", "list", "--state", "open"], "error: Invalid value for '--state'"),
    ],
)
def test_bad_input_exits_2(draft: int, factory: Any, run: Any, args: list[str], message: str) -> None:
    factory.account("GLOBEX", owner="bob", manager="maria")
    before = show(run)
    assert error(run(*args), 2).startswith(message)
    assert show(run) == before


def test_fill_file_with_an_unknown_key_names_file_and_field(draft: int, run: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad-form.yaml"
    path.write_text("goal_summary: fine\nrisks:\n  - description: x\n    likelihood: high\n")
    assert error(run("--as", "bob", "review", "fill", "1", str(path)), 2) == (
        f"error: {path}: risks.0.likelihood: unknown field")
    path.write_text("goal_sumary: typo\n")
    assert error(run("--as", "bob", "review", "fill", "1", str(path)), 2).startswith(
        f"error: {path}: goal_sumary: unknown field (known fields: account_goals, goal_summary")
    assert show(run)["goal_summary"] == FORM["goal_summary"]
    missing = tmp_path / "missing.yaml"
    assert error(run("--as", "bob", "review", "fill", "1", str(missing)), 2).startswith(
        f"error: {missing}: cannot read")


def test_fill_file_with_an_impossible_date_is_bad_input(draft: int, run: Any, tmp_path: Path) -> None:
    path = tmp_path / "form.yaml"
    path.write_text("next_review_date: 2027-02-30\n")
    assert error(run("--as", "bob", "review", "fill", "1", str(path)), 2).startswith(f"error: {path}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as", "nobody", "review", "submit", "1"],
         "error: unknown user 'nobody': add it with `pulsecheck users add nobody --role ...`"),
        (["--as", "maria", "review", "submit", "1"],
         "error: cannot submit: only the reviewer (bob) may submit, not maria"),
        (["--as", "olga", "review", "set", "1", "goal_summary", "x"],
         "error: review 1: only the reviewer (bob), the assigned approver (maria), the reviewer's manager or an admin "
         "may edit, not olga"),
        (["--as", "bob", "review", "set", "1", "priority", "P1"],
         "error: review 1: only the assigned approver (maria), the reviewer's manager or an admin may edit manager "
         "fields, not bob"),
        (["--as", "bob", "review", "approve", "1", "--comment", "mine"],
         "error: cannot approve: the review is draft"),
        (["--as", "bob", "review", "new", "ACME"], "error: account ACME already has review 1 (draft)"),
    ],
)
def test_refusals_exit_1(draft: int, run: Any, args: list[str], message: str) -> None:
    before = show(run)
    assert error(run(*args), 1).startswith(message)
    assert show(run) == before


def test_four_eyes_on_approval(factory: Any, run: Any, tmp_path: Path) -> None:
    """A manager who is the reviewer of a review cannot approve it, whoever the approver is."""
    factory.team()
    factory.user("mike", "manager")
    assert "(reviewer maria, approver mike" in ok(
        run("--as", "maria", "review", "new", "ACME", "--reviewer", "maria", "--approver", "mike"))
    path = tmp_path / "form.yaml"
    path.write_text(yaml.safe_dump(FORM))
    ok(run("--as", "maria", "review", "fill", "1", str(path)))
    ok(run("--as", "maria", "review", "submit", "1"))
    assert error(run("--as", "maria", "review", "approve", "1", "--comment", "self-approved"), 1) == (
        "error: cannot approve: maria is the reviewer and cannot approve their own review")
    data = show(run)
    assert (data["state"], data["manager_comments"]) == ("submitted", None)
    approved = run("--as", "mike", "review", "approve", "1", "--comment", "ok")
    assert ok(approved) == "review 1: approve -> approved\n"


def test_four_eyes_when_opening(team: None, run: Any) -> None:
    assert error(run("--as", "maria", "review", "new", "ACME", "--reviewer", "maria", "--approver", "maria"),
                 2) == "error: --approver: maria is also the reviewer (four-eyes)"
    assert page_items(run("review", "list", "--json")) == []



def test_four_eyes_when_assigning(draft: int, factory: Any, run: Any) -> None:
    """The approver moves only by `review reassign`, which never makes the reviewer the approver; `review set`
    cannot make the approver the reviewer; another manager is fine."""
    factory.user("mike", "manager")
    before = show(run)
    assert (before["reviewer"], before["approver"]) == ("bob", "maria")
    assert error(run("--as", "maria", "review", "set", "1", "approver", "mike"), 1) == (
        "error: the approver changes with `review reassign ID --approver M --comment TEXT`")
    assert error(run("--as", "maria", "review", "reassign", "1", "--approver", "bob", "--comment", "x"), 2) == (
        "error: --approver: bob is also the reviewer (four-eyes)")
    assert error(run("--as", "maria", "review", "set", "1", "reviewer", "maria"), 2) == (
        "error: reviewer: maria cannot be both reviewer and approver (four-eyes)")
    assert show(run) == before
    assert ok(run("--as", "maria", "review", "reassign", "1", "--approver", "mike", "--comment", "holiday")) == (
        "review 1: approver mike\n")
    assert (show(run)["reviewer"], show(run)["approver"]) == ("bob", "mike")


# --- the installed console script ----------------------------------------------------------------------


def test_installed_script_exit_codes(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "pulsecheck"
    assert script.exists(), script
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSECHECK_")}
    db = ["--db", f"sqlite:///{tmp_path / 'cli.db'}"]

    def pulsecheck(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(script), *db, *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=60, check=False)

    first = pulsecheck("users", "add", "maria", "--role", "manager")  # no users yet: who is the admin?
    assert (first.returncode, first.stderr) == (
        1, "error: no users yet: run `pulsecheck init` (the current login becomes the first admin)\n")
    assert pulsecheck("init").stdout.endswith(f"user {os_login()}: admin (login {os_login()})\n")
    added = pulsecheck("users", "add", "maria", "--role", "manager")
    assert (added.returncode, added.stdout, added.stderr) == (0, "user maria: manager\n", "")
    missing = pulsecheck("--as", "maria", "review", "show", "42")
    assert (missing.returncode, missing.stdout, missing.stderr) == (2, "", "error: unknown review 42\n")
    assert (tmp_path / "cli.db").exists()
