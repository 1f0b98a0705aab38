"""The cycle commands as a user runs them: round trips, --json shapes, archives, exit codes and one-line errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pulsecheck.demo import examples_dir
from pulsecheck.demo.story import TEAM
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import User
from tests.conftest import NOW, Templates, activate_rules, as_json, error, installed, ok, page_items

SHOW_KEYS = {
    "id", "period", "segments", "owner", "approver", "state", "as_of", "accounts", "steps_done", "next_step",
    "open_findings", "sealed", "period_start", "period_end", "created_at", "model", "ruleset", "steps", "findings",
    "decisions", "history", "digest",
}


def seed(database: Database, now: datetime) -> None:
    """The sample team, portfolio, inputs, approved model (5 weekly scorings) and active rules."""
    from pulsecheck.workflow import inputs, models, scoring
    from pulsecheck.workflow.accounts import import_accounts
    from pulsecheck.workflow.users import add_user

    tz = now.tzinfo
    assert tz is not None
    with database.transaction() as session:
        for name, roles, manager in TEAM:
            add_user(session, name, roles, now, email=f"{name}@example.com", manager=manager)
        import_accounts(session, examples_dir() / "accounts.csv")
        inputs.import_readings(session, examples_dir() / "readings.csv", tz, now)
        inputs.import_surveys(session, examples_dir() / "surveys.csv", tz, now)
        inputs.import_issues(session, examples_dir() / "issues.csv", tz)
        olga = session.scalars(select(User).where(User.name == "olga")).one()
        models.approve_model(session, examples_dir() / "scoring.yaml", olga, now)
    activate_rules(database, examples_dir() / "rules.yaml", "olga", now)
    for weeks_ago in range(4, -1, -1):
        with database.transaction() as session:
            scoring.score_portfolio(session, now - timedelta(weeks=weeks_ago), now)


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "pulsecheck.toml"
    path.write_text(f'[scoring]\nmodel = "{examples_dir() / "scoring.yaml"}"\n\n[cycle]\ndecline_points = 10\n')
    return str(path)


@pytest.fixture
def seeded(database: Database, templates: Templates) -> Database:
    """The test database holding `seed`'s portfolio (built once per session)."""
    return templates.load(database, templates.seeded("cli_cycle", lambda fresh: seed(fresh, NOW)))


@pytest.fixture
def cli(seeded: Database, run: Any, config: str) -> Any:
    """`run` with the seeded portfolio and the config file."""

    def invoke(*args: str) -> Any:
        return run("--config", config, *args)

    return invoke


def run_to_document(cli: Any) -> list[str]:
    """Start cycle 1 and run its steps up to escalate, deciding on every at-risk account; returns them."""
    ok(cli("--as", "bob", "cycle", "start", "--period", "2026-11"))
    for step in ("scope", "data", "model", "trends", "classify"):
        ok(cli("--as", "bob", "cycle", "step", "1", step))
    shown = as_json(cli("cycle", "show", "1", "--json"))
    at_risk = [a["account"] for a in shown["steps"][4]["result"]["at_risk"]]
    assert at_risk == ["SOYLENT", "INITECH", "CYBERDYNE"]  # the lowest bucket; P1, P1, P2 (test_cycle derives it)
    for account in at_risk:
        ok(cli("--as", "bob", "cycle", "decide", "1", account, "monitor", "--owner", "alice", "--reason", "call"))
    ok(cli("--as", "bob", "cycle", "step", "1", "escalate"))
    return at_risk


def test_a_cycle_round_trip(cli: Any, tmp_path: Path) -> None:
    out = ok(cli("--as", "bob", "cycle", "start", "--period", "2026-11", "--segment", "smb", "--segment", "enterprise"))
    assert out.splitlines()[0] == (
        "cycle 1 started for 2026-11 (enterprise, smb, 8 accounts, owner bob, as of 2026-11-24)")
    assert "finding 1 [process] segment mid-market has 4 account(s) but is not in scope" in out
    listed = page_items(cli("cycle", "list", "--json"))
    assert [(c["id"], c["state"], c["accounts"], c["next_step"]) for c in listed] == [(1, "draft", 8, "scope")]
    assert "scope" in ok(cli("cycle", "list"))  # the table

    for step in ("scope", "data", "model", "trends", "classify"):
        out = ok(cli("--as", "bob", "cycle", "step", "1", step, "--note", f"{step} checked"))
        assert out.startswith(f"cycle 1: step {step} done by bob\n")
    evidence = tmp_path / "export.csv"
    evidence.write_text("id\n")
    at_risk = [a["account"] for a in as_json(cli("cycle", "show", "1", "--json"))["steps"][4]["result"]["at_risk"]]
    assert at_risk == ["SOYLENT"]  # of the lowest-bucket accounts, the only one in enterprise or smb
    for account in at_risk:
        assert ok(cli("--as", "bob", "cycle", "decide", "1", account, "monitor", "--owner", "alice", "--reason",
                      "renewal call booked")) == f"cycle 1: {account} -> monitor (owner alice)\n"
    assert ok(cli("--as", "bob", "cycle", "step", "1", "escalate", "--evidence", str(evidence))).endswith(
        f"  evidence export.csv: stored, sha256 {hashlib.sha256(b'id' + bytes([10])).hexdigest()}\n")
    assert ok(cli("--as", "bob", "cycle", "finding", "add", "1", "--kind", "data", "--detail", "stale feed",
                  "--action", "Fix it", "--owner", "olga", "--due", "2026-12-15")) == "cycle 1: finding 2 added\n"
    assert ok(cli("--as", "bob", "cycle", "finding", "close", "1", "--note", "accepted scope")) == (
        "finding 1 closed\n")
    ok(cli("--as", "bob", "cycle", "step", "1", "document", "--evidence", "https://wiki.example.com/c1"))
    assert ok(cli("--as", "bob", "cycle", "submit", "1")) == "cycle 1: submit -> submitted\n"
    approved = ok(cli("--as", "maria", "cycle", "approve", "1", "--comment", "agreed"))
    assert approved.startswith("cycle 1: approve -> approved (sealed, sha256 ")

    shown = as_json(cli("cycle", "show", "1", "--json"))
    assert set(shown) == SHOW_KEYS
    assert [s["done_by"] for s in shown["steps"]] == ["bob"] * 7
    evidence_sha = hashlib.sha256(b"id\n").hexdigest()
    assert shown["steps"][5]["evidence"] == []  # a file is stored, not linked
    assert shown["steps"][5]["attachments"] == [
        {"number": 1, "filename": "export.csv", "sha256": evidence_sha, "note": None}]
    assert [(f["id"], f["status"]) for f in shown["findings"]] == [(1, "closed"), (2, "open")]
    assert {d["account"] for d in shown["decisions"]} == set(at_risk)
    assert shown["approver"] == "maria" and shown["digest"] in approved
    assert [e["event"] for e in shown["history"]][:3] == ["start", "step", "step"]
    text = ok(cli("cycle", "show", "1"))
    assert "# Portfolio review cycle 1: 2026-11" in text and "### Step classify" in text
    done_at = shown["steps"][0]["done_at"]  # ISO in UTC in --json; to the minute in the business zone (UTC here)
    assert f"| scope | bob | {datetime.fromisoformat(done_at).strftime('%Y-%m-%d %H:%M')} |" in text

    assert ok(cli("cycle", "verify", "1")).startswith(f"ok: cycle 1: seal sha256 {shown['digest']} matches")
    assert as_json(cli("cycle", "verify", "1", "--json")) == {
        "cycle": 1, "state": "approved", "sealed": True, "ok": True, "problems": []}

    for fmt in ("md", "json", "html"):
        path = tmp_path / f"cycle.{fmt}"
        assert ok(cli("cycle", "export", "1", "--format", fmt, "-o", str(path))) == f"wrote {path}\n"
    archive = json.loads((tmp_path / "cycle.json").read_text())
    assert archive["digest"] == shown["digest"] and archive["verification"]["ok"] is True
    assert len(archive["accounts_list"]) == 8 and archive["evidence"][-1]["link"] == "https://wiki.example.com/c1"
    markdown = (tmp_path / "cycle.md").read_text()
    for expected in ("## Accounts in scope (8)", "| 2 | data | stale feed | Fix it | olga | 2026-12-15 | open |",
                     "## Decisions", "## Escalation log", "Scoring model: 2026.11", "Ruleset: rules.yaml"):
        assert expected in markdown
    html = (tmp_path / "cycle.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html and "src=" not in html
    assert "stale feed" in html and 'href="https://wiki.example.com/c1"' in html
    assert "file:" not in html and f"export.csv (stored in the database, sha256 <code>{evidence_sha}</code>)" in html
    assert ok(cli("cycle", "export", "1")) == markdown  # stdout by default

    assert ok(cli("--as", "maria", "cycle", "close", "1")) == "cycle 1: close -> closed\n"
    second = ok(cli("--as", "bob", "cycle", "start", "--period", "2026-11", "--segment", "enterprise",
                    "--segment", "smb"))
    assert "stale feed (carried from finding 2)" in second


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--as", "bob", "cycle", "start", "--period", "2026-13"), 2,
         "error: --period '2026-13': not a period (YYYY-MM, e.g. 2026-11, or YYYY-Qn)"),
        (("--as", "bob", "cycle", "start", "--period", "2026-11", "--segment", "retail"), 2,
         "error: --segment 'retail': unknown segment (known: enterprise, mid-market, smb)"),
        (("--as", "bob", "cycle", "start", "--period", "2026-11", "--owner", "zed"), 2,
         "error: --owner: unknown user 'zed'"),
        (("--as", "olga", "cycle", "start", "--period", "2026-11"), 1,
         "error: cannot start: only a reviewer, a manager or an admin may start, not olga"),
        (("--as", "bob", "cycle", "step", "1", "scope"), 2, "error: unknown cycle 1"),
        (("cycle", "show", "7"), 2, "error: unknown cycle 7"),
        (("--as", "bob", "cycle", "finding", "close", "9", "--note", "x"), 2, "error: unknown finding 9"),
    ],
)
def test_bad_input_before_any_cycle(cli: Any, args: tuple[str, ...], code: int, message: str) -> None:
    assert error(cli(*args), code) == message
    assert page_items(cli("cycle", "list", "--json")) == []


def test_exit_codes_on_a_running_cycle(cli: Any) -> None:
    at_risk = run_to_document(cli)
    bob = ("--as", "bob", "cycle")
    cases = [
        ((*bob, "step", "1", "review"), 2, "error: unknown step 'review': choose from scope, data, model, trends, "
                                           "classify, escalate, document"),
        ((*bob, "decide", "1", "NOPE", "monitor", "--owner", "bob", "--reason", "x"), 2,
         "error: unknown account 'NOPE'"),
        ((*bob, "decide", "1", "ACME", "monitor", "--owner", "zed", "--reason", "x"), 2,
         "error: --owner: unknown user 'zed'"),
        ((*bob, "decide", "1", "ACME", "monitor", "--owner", "bob"), 2,
         "error: --reason is required for a monitor decision"),
        ((*bob, "finding", "add", "1", "--kind", "bug", "--detail", "x"), 2,
         "error: --kind 'bug': choose from data, scoring, process, other"),
        ((*bob, "finding", "add", "1", "--kind", "data", "--detail", "x", "--action", "y", "--due", "someday"), 2,
         None),
        ((*bob, "step", "1", "document", "--evidence", "/no/such/file.pdf"), 2,
         "error: --evidence /no/such/file.pdf: no such file or directory (give a path or a URL)"),
        ((*bob, "step", "1", "document", "--evidence", "javascript://%0aalert(document.domain)"), 2,
         "error: --evidence javascript://%0aalert(document.domain): only http and https links are allowed, not "
         "javascript:"),
        ((*bob, "step", "1", "document", "--evidence", "data:text/html,<script>alert(1)</script>"), 2,
         "error: --evidence data:text/html,<script>alert(1)</script>: only http and https links are allowed, "
         "not data:"),
        ((*bob, "submit", "1"), 1, "error: cannot submit: step document is still open (1 of 7 steps not done)"),
        (("--as", "alice", "cycle", "step", "1", "document"), 1,
         "error: cannot complete step document: only the owner (bob), a manager or an admin may work, not alice"),
        (("--as", "maria", "cycle", "approve", "1"), 1,
         "error: cannot approve: the cycle is draft (approve needs submitted)"),
    ]
    for args, code, message in cases:
        line = error(cli(*args), code)
        assert message is None or line == message, (args, line)
    assert at_risk
    ok(cli(*bob, "step", "1", "document"))
    ok(cli(*bob, "submit", "1"))
    assert error(cli("--as", "bob", "cycle", "approve", "1"), 1) == (
        "error: cannot approve: only a manager or an admin may approve, not bob")
    assert error(cli("--as", "maria", "cycle", "reject", "1"), 1) == (
        "error: cannot reject: a comment is required (--comment TEXT)")
    assert error(cli(*bob, "finding", "add", "1", "--kind", "data", "--detail", "late"), 1) == (
        "error: cannot add a finding: the cycle is submitted (only a draft changes)")
    assert ok(cli("--as", "maria", "cycle", "reject", "1", "--comment", "explain the monitor decisions")) == (
        "cycle 1: reject -> draft\n")
    ok(cli(*bob, "submit", "1"))
    ok(cli("--as", "hank", "cycle", "approve", "1"))
    assert error(cli(*bob, "step", "1", "scope"), 1) == (
        "error: cannot complete step scope: the cycle is approved and sealed (only a draft changes)")
    history = as_json(cli("cycle", "show", "1", "--json"))["history"]
    assert [(e["event"], e["actor"], e["comment"]) for e in history if e["event"] in ("reject", "approve")] == [
        ("reject", "maria", "explain the monitor decisions"), ("approve", "hank", None)]


def test_escalate_is_refused_until_every_at_risk_account_is_decided(cli: Any) -> None:
    ok(cli("--as", "bob", "cycle", "start", "--period", "2026-11"))
    for step in ("scope", "data", "model", "trends", "classify"):
        ok(cli("--as", "bob", "cycle", "step", "1", step))
    line = error(cli("--as", "bob", "cycle", "step", "1", "escalate"), 1)
    assert line.startswith("error: cannot complete step escalate: ") and "have no decision with a named owner" in line
    assert as_json(cli("cycle", "show", "1", "--json"))["next_step"] == "escalate"


def test_an_unwritable_output_changes_nothing(cli: Any, tmp_path: Path) -> None:
    ok(cli("--as", "bob", "cycle", "start", "--period", "2026-11"))
    before = as_json(cli("cycle", "show", "1", "--json"))
    target = tmp_path / "missing" / "cycle.html"
    assert error(cli("cycle", "export", "1", "--format", "html", "-o", str(target)), 2) == (
        f"error: -o {target}: no such directory {target.parent}")
    assert not target.parent.exists()
    assert as_json(cli("cycle", "show", "1", "--json")) == before
    assert list(tmp_path.glob("**/.cycle.html.*")) == []


def test_a_bad_cycle_config_is_an_input_error(seeded: Database, run: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[cycle]\ndecline_pts = 3\n")
    ok(run("--as", "bob", "cycle", "start", "--period", "2026-11"))
    line = error(run("--config", str(bad), "--as", "bob", "cycle", "step", "1", "scope"), 2)
    assert line == f"error: {bad}: [cycle] decline_pts: unknown key (did you mean 'decline_points'?)"


def test_installed_script(seeded: Database, now: datetime, db_url: str, tmp_path: Path) -> None:
    env = {"PULSECHECK_NOW": now.isoformat(), "PULSECHECK_USER": "bob"}

    def pulsecheck(*args: str) -> subprocess.CompletedProcess[str]:
        return installed("--db", db_url, *args, cwd=tmp_path, env=env)

    started = ok(pulsecheck("cycle", "start", "--period", "2026-11", "--segment", "smb"))
    assert started.startswith("cycle 1 started for 2026-11 (smb, 4 accounts")
    assert error(pulsecheck("cycle", "step", "1", "trends"), 1) == (
        "error: cannot complete step trends: step scope is still open (steps run in order: scope, data, model, "
        "trends, classify, escalate, document)")
    assert error(pulsecheck("cycle", "step", "1", "triage"), 2) == (
        "error: unknown step 'triage': choose from scope, data, model, trends, classify, escalate, document")
    shown = as_json(pulsecheck("cycle", "show", "1", "--json"))
    assert (shown["id"], shown["segments"], shown["state"]) == (1, ["smb"], "draft")


def test_finding_edit_as_a_user_runs_it(seeded: Database, now: datetime, db_url: str, tmp_path: Path) -> None:
    """`cycle finding edit` in the installed script: only the fields given change, the audit row says old and new,
    a stale --if-version and someone with no part in the cycle are refused (1), bad input is 2, nothing half
    written."""

    def pulsecheck(who: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {"PULSECHECK_NOW": now.isoformat(), "PULSECHECK_USER": who}
        return installed("--db", db_url, *args, cwd=tmp_path, env=env)

    ok(pulsecheck("bob", "cycle", "start", "--period", "2026-11", "--segment", "smb"))
    added = ok(pulsecheck("bob", "cycle", "finding", "add", "1", "--kind", "data", "--detail", "stale feed",
                          "--action", "Fix it", "--owner", "olga", "--due", "2026-12-15"))
    fid = int(added.split("finding ")[1].split()[0])

    def finding() -> dict[str, Any]:
        shown = as_json(pulsecheck("bob", "cycle", "show", "1", "--json"))
        return next(f for f in shown["findings"] if f["id"] == fid)

    read = finding()
    said = ok(pulsecheck("bob", "cycle", "finding", "edit", str(fid), "--detail", "STARK usage feed stale",
                         "--due", "2026-12-20", "--if-version", read["version"]))
    after = finding()
    assert said == f"finding {fid} edited: detail, due (version {after['version']})\n"
    assert (after["detail"], after["corrective_action"], after["owner"], after["due"]) == (
        "STARK usage feed stale", "Fix it", "olga", "2026-12-20")
    history = as_json(pulsecheck("bob", "cycle", "show", "1", "--json"))["history"]
    assert (history[-1]["event"], history[-1]["actor"], history[-1]["comment"]) == (
        "finding", "bob",
        f'#{fid} edited: detail "stale feed" -> "STARK usage feed stale"; due "2026-12-15" -> "2026-12-20"')

    stale = pulsecheck("bob", "cycle", "finding", "edit", str(fid), "--detail", "late", "--if-version",
                       read["version"])
    assert error(stale, 1) == (
        f"error: finding {fid} changed since you read it (version {read['version']}, now {after['version']}): "
        "nothing was saved; read it again")
    assert error(pulsecheck("carol", "cycle", "finding", "edit", str(fid), "--detail", "mine now"), 1) == (
        f"error: cannot edit finding {fid}: only the owner (bob), a manager or an admin may work, not carol")
    assert error(pulsecheck("bob", "cycle", "finding", "edit", str(fid), "--detail", "  "), 2) == (
        "error: --detail is empty")
    assert error(pulsecheck("bob", "cycle", "finding", "edit", str(fid)), 2) == (
        "error: nothing to change: give --kind, --detail, --action, --owner or --due")
    assert error(pulsecheck("bob", "cycle", "finding", "edit", str(fid), "--due", "soon"), 2).startswith(
        "error: --due: ")
    assert error(pulsecheck("bob", "cycle", "finding", "edit", "999", "--detail", "x"), 2) == (
        "error: unknown finding 999")
    assert error(pulsecheck("bob", "cycle", "finding", "edit", str(fid), "--owner", "nobody"), 2).startswith(
        "error: --owner")
    assert finding() == after  # every refusal above left it as it was
    assert ok(pulsecheck("maria", "cycle", "finding", "edit", str(fid), "--action", "")) == (
        f"finding {fid} edited: corrective action, owner, due (version {finding()['version']})\n")
    assert (finding()["corrective_action"], finding()["owner"], finding()["due"]) == (None, None, None)
    assert ok(pulsecheck("maria", "cycle", "finding", "edit", str(fid), "--kind", "data")).startswith(
        f"finding {fid}: nothing changed")


def test_verify_and_export_read_on_core_and_still_catch_tampering(cli: Any, db_url: str, os_login_admin: str,
                                                                     database: Database, tmp_path: Path) -> None:
    """`cycle verify` and `cycle export` as the installed script runs them: no ORM loaded (issue 17), the same
    archive the web app's session-based read makes, and a record changed after the seal named by both."""
    from sqlalchemy import text

    from pulsecheck.workflow import cycles
    from tests.cli.test_cold_start_imports import imported, loaded

    run_to_document(cli)
    ok(cli("--as", "bob", "cycle", "step", "1", "document", "--evidence", "https://wiki.example.com/c1"))
    ok(cli("--as", "bob", "cycle", "submit", "1"))
    digest = as_json(cli("--as", "maria", "cycle", "approve", "1") and cli("cycle", "show", "1", "--json"))["digest"]
    env = {"PULSECHECK_DATABASE_URL": db_url, "PULSECHECK_NOW": NOW.isoformat()}
    orm = ("sqlalchemy.orm", "pulsecheck.storage.models", "pulsecheck.storage.more_models", "pulsecheck.storage.chain")
    for args, proof in ((("cycle", "verify", "1"), "pulsecheck.workflow.chaincheck"),
                        (("cycle", "export", "1", "--format", "json"), "pulsecheck.workflow.cycles.seal")):
        modules = imported(db_url, *args, cwd=tmp_path, PULSECHECK_NOW=NOW.isoformat())
        assert proof in modules and [name for name in orm if loaded(modules, name)] == []
    assert ok(installed("cycle", "verify", "1", cwd=tmp_path, env=env)) == (
        f"ok: cycle 1: seal sha256 {digest} matches, audit trail consistent\n")
    exported = json.loads(ok(installed("cycle", "export", "1", "--format", "json", cwd=tmp_path, env=env)))
    with database.transaction() as session:  # the web app's path: a session and the mapped cycle
        assert exported == json.loads(json.dumps(cycles.cycle_dict(session, cycles.get_cycle(session, 1), full=True)))
    assert exported["digest"] == digest and exported["verification"] == {"problems": [], "ok": True}
    assert len(exported["accounts_list"]) == 12 and exported["evidence"][-1]["link"] == "https://wiki.example.com/c1"

    with database.engine.begin() as conn:  # behind the product's back, after the seal
        conn.execute(text("UPDATE cycle_decisions SET reason = 'never called' WHERE cycle_id = 1"))
    done = installed("cycle", "verify", "1", cwd=tmp_path, env=env)
    assert done.returncode == 1 and done.stderr.startswith("error: cycle 1 failed verification")
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAIL ")]
    assert failed == ["FAIL content changed after approval: decisions differ from the sealed archive"]
    exported = json.loads(ok(installed("cycle", "export", "1", "--format", "json", cwd=tmp_path, env=env)))
    assert exported["verification"]["ok"] is False
    assert exported["verification"]["problems"] == [line.removeprefix("FAIL ") for line in failed]
