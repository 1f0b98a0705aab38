"""Scoring from the command line: imports of the sample portfolio, model validate/approve/show/check, score,
deviations and the accounts list/show views, each as a user runs them (exit codes, stdout, stderr, --json)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from pulsecheck.storage.db import Database
from tests.conftest import Templates, as_json, ok, page_items, sample_via_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODEL = str(EXAMPLES / "scoring.yaml")
MODEL_TEXT = (EXAMPLES / "scoring.yaml").read_text(encoding="utf-8")

Run = Callable[..., Result]


@pytest.fixture
def portfolio(run: Run, database: Database, templates: Templates) -> Run:
    """The sample team and portfolio imported through the CLI, the example model approved by olga (ops)."""
    templates.load(database, templates.seeded("sample", sample_via_cli))
    return run


def test_importing_the_sample_portfolio_says_what_was_stored(run: Run) -> None:
    ok(run("users", "add", "maria", "--role", "manager"))
    for name in ("bob", "alice", "carol"):
        ok(run("users", "add", name, "--role", "reviewer", "--manager", "maria"))
    assert ok(run("users", "add", "olga", "--role", "ops")) == "user olga: ops\n"
    for noun, file, created in (
        ("accounts", "accounts.csv", "12 created, 0 updated"),
        ("readings", "readings.csv", "606 readings created, 0 updated"),  # 450 + 12 accounts x 13 weeks of logins
        ("surveys", "surveys.csv", "144 surveys created, 0 updated"),
        ("issues", "issues.csv", "10 issues created, 0 updated"),
    ):
        path = EXAMPLES / file
        assert ok(run(noun, "import", str(path))) == f"{path}: {created}\n"
    assert ok(run("--as", "olga", "model", "approve", MODEL)).startswith("model 2026.11 approved by olga")


def test_reimporting_readings_stores_nothing_twice(portfolio: Run) -> None:
    path = EXAMPLES / "readings.csv"
    assert ok(portfolio("readings", "import", str(path))) == (
        f"{path}: 0 readings created, 0 updated, 606 already stored\n"
    )
    path = EXAMPLES / "issues.csv"
    assert ok(portfolio("issues", "import", str(path))) == f"{path}: 0 issues created, 10 updated\n"


def test_a_bad_import_row_exits_2_and_stores_nothing(portfolio: Run, tmp_path: Path) -> None:
    bad = tmp_path / "readings.csv"
    bad.write_text("account,kpi,value,observed_at\nACME,usage,90,2026-11-24T08:00:00Z\nACME,usage,n/a,2026-11-24\n")
    result = portfolio("readings", "import", str(bad))
    assert result.exit_code == 2
    assert result.stderr == f"error: {bad}: row 3, column 'value': 'n/a' is not a number\n"
    assert result.stdout == ""
    bad.write_text("account,kpi,value,observed_at\nACME,usage,90,2026-11-24T08:00:00Z\n")
    assert ok(portfolio("readings", "import", str(bad))) == f"{bad}: 1 readings created, 0 updated\n"


def test_model_validate_reports_every_problem_with_file_and_line(run: Run, tmp_path: Path) -> None:
    assert ok(run("model", "validate", MODEL)) == f"{MODEL}: ok (version 2026.11, 6 KPIs, 3 buckets)\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        'version: "2026.12"\n'
        "kpis:\n"
        "  - {name: usage, weight: 25, scale: {min: 0, max: 100}, max_age: 7d}\n"
        "  - {name: nps, weight: 20, from_surveys: nps, max_age: 90d}\n"
        "  - {name: csat, weight: 20, from_surveys: csat, max_age: 90d}\n"
        "  - {name: open_tickets, weight: 15, scale: {min: 20, max: 0}}\n"
        "  - {name: on_time_delivery, weight: 15, scael: {min: 0, max: 100}}\n"
        "buckets:\n"
        "  - {name: unhealthy, below: 40, color: orange}\n"
        "  - {name: healthy, color: blue}\n"
    )
    result = run("model", "validate", str(bad))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{bad}:2: kpi weights sum to 95, expected 100",
        f"{bad}:7: kpi 'on_time_delivery': unknown key 'scael' (did you mean 'scale'?)",
        f"{bad}:7: kpi 'on_time_delivery': needs a scale {{min, max}} (or from_surveys: nps|csat|ces)",
        f"error: {bad}: 3 problem(s)",
    ]


def test_model_approve_needs_manager_or_ops_and_new_content(run: Run, tmp_path: Path) -> None:
    ok(run("users", "add", "olga", "--role", "ops"))
    ok(run("users", "add", "bob", "--role", "reviewer"))
    refused = run("--as", "bob", "model", "approve", MODEL)
    assert refused.exit_code == 1
    assert refused.stderr == "error: only a manager, an ops or an admin may approve, not bob\n"
    approved = ok(run("--as", "olga", "model", "approve", MODEL))
    again = run("--as", "olga", "model", "approve", MODEL)
    assert again.exit_code == 1
    sha = json.loads(ok(run("model", "show", "--json")))["sha256"]
    assert approved == f"model 2026.11 approved by olga (sha256 {sha[:12]})\n"
    assert again.stderr == f"error: model 2026.11 is already the approved version (sha256 {sha[:12]})\n"


def test_score_and_model_show_refuse_before_any_approval(run: Run) -> None:
    for args in (("score",), ("model", "show", "--json"), ("model", "check", MODEL)):
        result = run(*args)
        assert result.exit_code == 1
        assert result.stderr == "error: no approved scoring model: run `pulsecheck model approve FILE` first\n"


def test_model_show_json_lists_the_model_and_its_versions(portfolio: Run, tmp_path: Path) -> None:
    ok(portfolio("users", "add", "maria", "--role", "manager"))
    newer = tmp_path / "v2.yaml"
    newer.write_text(MODEL_TEXT.replace('version: "2026.11"', 'version: "2026.12"'))
    ok(portfolio("--as", "maria", "model", "approve", str(newer)))
    data = as_json(portfolio("model", "show", "--json"))
    assert set(data) == {"version", "sha256", "model", "versions"}
    assert data["version"] == data["model"]["version"] == "2026.12"
    assert len(data["sha256"]) == 64
    assert {k["name"]: k["weight"] for k in data["model"]["kpis"]} == {
        "usage": 30, "nps": 20, "csat": 20, "open_tickets": 15, "on_time_delivery": 15, "logins": 0}
    assert [(v["version"], v["status"], v["approved_by"], v["approved_at"]) for v in data["versions"]] == [
        ("2026.12", "approved", "maria", "2026-11-24T09:00:00+00:00"),
        ("2026.11", "retired", "olga", "2026-11-24T09:00:00+00:00"),
    ]
    assert data["versions"][0]["sha256"] == data["sha256"] != data["versions"][1]["sha256"]
    text = ok(portfolio("model", "show"))
    assert f"approved model 2026.12 (sha256 {data['sha256'][:12]}, by maria)" in text
    assert "open_tickets" in text and "20..0" in text


def test_model_check_records_a_mismatch_until_the_file_matches_again(portfolio: Run, tmp_path: Path) -> None:
    live = tmp_path / "live.yaml"
    live.write_text(MODEL_TEXT.replace("name: usage, weight: 30", "name: usage, weight: 25")
                    .replace("name: open_tickets, weight: 15", "name: open_tickets, weight: 20"))
    differs = portfolio("model", "check", str(live))
    assert differs.exit_code == 1
    assert differs.stdout.splitlines() == ["DIFF kpi open_tickets: weight 15 -> 20", "DIFF kpi usage: weight 30 -> 25"]
    assert differs.stderr == (
        f"error: {live} differs from the approved model in 2 place(s): recorded as a model_mismatch deviation\n"
    )
    mismatch = [d for d in page_items(portfolio("deviations", "list", "--json", "--open"))
                if d["kind"] == "model_mismatch"]
    assert [(d["account"], d["status"], d["detail"]) for d in mismatch] == [
        (None, "open", "kpi open_tickets: weight 15 -> 20; kpi usage: weight 30 -> 25")]
    same = ok(portfolio("model", "check", MODEL))
    assert same == f"{MODEL}: matches the approved model\n"
    listed = page_items(portfolio("deviations", "list", "--json", "--kind", "model_mismatch"))
    assert [(d["id"], d["status"]) for d in listed] == [(mismatch[0]["id"], "resolved")]
    assert as_json(portfolio("model", "check", MODEL, "--json")) == {
        "file": MODEL, "matches": True, "differences": []}
    nothing = portfolio("model", "check")
    assert nothing.exit_code == 2
    assert nothing.stderr == "error: no live model file: pass FILE or set [scoring] model in pulsecheck.toml\n"


SCORE_KEYS = {"as_of", "model_version", "accounts", "scored", "provisional", "buckets", "deviations"}


def test_score_json_summarises_the_run(portfolio: Run) -> None:
    data = as_json(portfolio("score", "--json"))
    assert set(data) == SCORE_KEYS
    assert data == {
        "as_of": "2026-11-24T09:00:00+00:00", "model_version": "2026.11", "accounts": 12, "scored": 12,
        "provisional": 3, "buckets": {"healthy": 3, "neutral": 6, "unhealthy": 3},
        "deviations": {"opened": 3, "resolved": 0, "reopened": 0},
    }
    again = as_json(portfolio("score", "--json"))  # same clock, same as_of: replaced, nothing new
    assert again["deviations"] == {"opened": 0, "resolved": 0, "reopened": 0}
    text = ok(portfolio("score"))
    assert "scored 12/12 accounts as of 2026-11-24 09:00 with model 2026.11 (3 provisional)" in text
    assert "buckets: healthy 3, neutral 6, unhealthy 3" in text
    unhealthy = page_items(portfolio("accounts", "list", "--bucket", "unhealthy", "--json"))
    assert [(a["id"], a["bucket"]) for a in unhealthy] == [
        ("CYBERDYNE", "unhealthy"), ("INITECH", "unhealthy"), ("SOYLENT", "unhealthy")]
    assert all(a["score"] < 40 for a in unhealthy)
    healthy = page_items(portfolio("accounts", "list", "--bucket", "healthy", "--json"))
    assert [a["id"] for a in healthy] == ["HOOLI", "TYRELL", "WAYNE"] and all(a["score"] >= 80 for a in healthy)
    assert page_items(portfolio("accounts", "list", "--bucket", "nonexistent", "--json")) == []
    listing = ok(portfolio("accounts", "list", "--bucket", "unhealthy"))
    assert "SOYLENT" in listing and "HOOLI" not in listing


def test_score_one_account(portfolio: Run) -> None:
    data = as_json(portfolio("score", "--account", "SOYLENT", "--json"))
    assert (data["accounts"], data["scored"], data["buckets"]) == (1, 1, {"unhealthy": 1})
    listed = page_items(portfolio("accounts", "list", "--json"))
    assert [a["id"] for a in listed if a["score"] is not None] == ["SOYLENT"]
    assert "no score snapshots yet (run `pulsecheck score`)" in ok(portfolio("accounts", "show", "ACME"))
    unknown = portfolio("score", "--account", "NOPE")
    assert (unknown.exit_code, unknown.stderr) == (2, "error: unknown account 'NOPE'\n")


def test_score_as_of_a_date_scores_the_end_of_that_day(portfolio: Run) -> None:
    data = as_json(portfolio("score", "--as-of", "2026-10-24", "--json"))
    assert (data["as_of"], data["accounts"], data["scored"]) == ("2026-10-24T23:59:59+00:00", 12, 12)
    bad = portfolio("score", "--as-of", "24/10/2026")
    assert (bad.exit_code, bad.stderr) == (2, "error: --as-of: '24/10/2026' is not a date (YYYY-MM-DD)\n")


def test_deviations_list_and_accept(portfolio: Run) -> None:
    ok(portfolio("score"))
    listed = page_items(portfolio("deviations", "list", "--json"))
    assert {(d["account"], d["kind"], d["subject"], d["status"]) for d in listed} == {
        ("UMBRELLA", "duplicate", "usage", "open"),
        ("STARK", "stale", "usage", "open"),
        ("WONKA", "missing", "on_time_delivery", "open"),
    }
    assert set(listed[0]) == {"id", "account", "kind", "subject", "detail", "status", "found_at", "accepted_by",
                              "reason", "accepted_until"}
    stale = next(d for d in listed if d["kind"] == "stale")
    assert "is 14d old (max_age 7d)" in stale["detail"]
    ident = str(stale["id"])
    reason = ("--reason", "feed moving")
    refused = portfolio("--as", "bob", "deviations", "accept", ident, *reason, "--until", "2026-12-31")
    assert (refused.exit_code, refused.stderr) == (1, "error: only a manager or an admin may accept, not bob\n")
    ops = portfolio("--as", "olga", "deviations", "accept", ident, *reason, "--until", "2026-12-31")
    assert (ops.exit_code, ops.stderr) == (1, "error: only a manager or an admin may accept, not olga\n")
    past = portfolio("--as", "maria", "deviations", "accept", ident, *reason, "--until", "2026-11-01")
    assert (past.exit_code, past.stderr) == (2, "error: --until 2026-11-01: must be in the future\n")
    missing_reason = portfolio("--as", "maria", "deviations", "accept", ident, "--until", "2026-12-31")
    assert missing_reason.exit_code == 2 and "--reason" in missing_reason.stderr
    accepted = ok(portfolio("--as", "maria", "deviations", "accept", ident, *reason, "--until", "2026-12-31"))
    assert accepted == f"deviation {ident} accepted until 2026-12-31\n"
    ok(portfolio("score"))  # the cause persists before the date: it stays accepted
    still = {d["id"]: d for d in page_items(portfolio("deviations", "list", "--open", "--json"))}[stale["id"]]
    assert (still["status"], still["accepted_by"], still["reason"], still["accepted_until"]) == (
        "accepted", "maria", "feed moving", "2026-12-31")
    assert len(page_items(portfolio("deviations", "list", "--open", "--json", "--account", "STARK"))) == 1
    unknown = portfolio("--as", "maria", "deviations", "accept", "999", *reason, "--until", "2026-12-31")
    assert (unknown.exit_code, unknown.stderr) == (2, "error: unknown deviation 999\n")
    table = ok(portfolio("deviations", "list"))
    assert "accepted" in table and "UMBRELLA" in table


def test_accounts_show_explains_a_drop(portfolio: Run) -> None:
    ok(portfolio("score", "--as-of", "2026-10-24"))
    ok(portfolio("score"))
    data = as_json(portfolio("accounts", "show", "ACME", "--json"))
    assert (data["id"], data["owner"], data["renewal_date"]) == ("ACME", "bob", "2027-01-10")
    trend = data["trend"]
    assert [(h["as_of"], h["score"], h["bucket"]) for h in trend["history"]] == [
        ("2026-10-24T23:59:59+00:00", 78.61, "neutral"), ("2026-11-24T09:00:00+00:00", 59.99, "neutral")]
    assert trend["sparkline"] == "▇▅"
    assert (trend["change_30d"], trend["direction"]) == (-18.62, "down")
    # usage fell (the ACME sample profile goes from 88 to 55): the biggest change comes first, and the
    # per-KPI changes (each rounded to 2 decimals) add up to the drop
    changes = dict(trend["contribution_changes"])
    assert trend["contribution_changes"][0] == ["usage", -20.76]
    assert all(delta > 0 for kpi, delta in changes.items() if kpi != "usage")
    assert sum(changes.values()) == pytest.approx(-18.62, abs=0.03)
    text = ok(portfolio("accounts", "show", "ACME"))
    # the change since the previous snapshot (78.61 on 2026-10-24 -> 59.99) and over 30 days, both real numbers
    assert "score 59.99 (neutral)  ▇▅  -18.62 since 2026-10-24 (78.61); 30 days: down -18.62" in text
    assert "            arr: 240,000\n" in text and "None" not in text
    assert "usage                -20.76 points" in text
    unknown = portfolio("accounts", "show", "NOPE")
    assert (unknown.exit_code, unknown.stderr) == (2, "error: unknown account 'NOPE'\n")
