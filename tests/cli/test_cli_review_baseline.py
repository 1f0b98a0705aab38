"""A review carries the scorecard it was opened on: `review show` (terminal and --json) and `review export`
(md, html, json) show that baseline (score, bucket, groups, each KPI's raw and normalized value, weight,
contribution and status, areas of concern and strengths) with the account as it is now (segment, ARR, renewal,
owner, current score). Opened by hand, by a rule through `evaluate`; old reviews without one still verify.
The commands under test run as the installed console script, in a subprocess."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import TWO_GROUP_MODEL, Run, error, ok

HOSTILE = "<b>Acme</b> | [x](javascript:y) \x1b]0;pwn\x07"

MODEL = TWO_GROUP_MODEL

# Hand computation of the 2026-11-23 snapshot (usage 85, tickets 12, logins 30), the one a review opened on
# 2026-11-24 (the tests' clock) starts from:
#   usage:   normalized 85, contribution 60/100 * 85 = 51, rating strength (default: normalized from 80)
#   tickets: normalized (20 - 12) / (20 - 0) * 100 = 40, contribution 40/100 * 40 = 16, rating concern (raw 12
#            above 10)
#   logins:  tracked (weight 0), contribution 0
#   score 51 + 16 = 67 -> bucket fine (not below 50); groups: value 85, care 40.
# Scored again on 2026-11-24 with usage 30: usage normalized 30 (concern, below 40), contribution 18; score
# 18 + 16 = 34 -> risk. The review keeps the 67 it was opened on; the account's current score is 34.
READINGS = """\
account,kpi,value,observed_at,source
ACME,usage,85,2026-11-22T06:00:00,x
ACME,tickets,12,2026-11-22T06:00:00,x
ACME,logins,30,2026-11-22T06:00:00,x
"""
LATER = "account,kpi,value,observed_at,source\nACME,usage,30,2026-11-24T06:00:00,x\n"
FORM = {
    "account_goals": "Expand to 500 seats",
    "goal_summary": "320 seats, on track",
    "overall_assessment": "Ticket load is the risk",
    "next_review_date": "2027-02-22",
    "risks": [{"description": "Ticket backlog", "severity": "high",
               "actions": [{"description": "Weekly triage", "owner": "bob", "due_date": "2026-12-20"}]}],
}
RULES = """\
version: 1
rules:
  - id: any-concern
    description: An area of concern on the scorecard
    when:
      concerns: {gte: 1}
    then:
      open_review: {priority: P2, due_in: 7d}
"""
CARD_KEYS = ("as_of", "model_version", "score", "bucket", "bucket_color", "provisional", "groups", "kpis",
             "concerns", "strengths")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script with the test's environment (its database and clock)."""
    script = Path(sys.executable).parent / "pulsecheck"
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=dict(os.environ), timeout=120,
                          check=False)


def json_of(*args: str) -> Any:
    return json.loads(ok(cli(*args)))


@pytest.fixture
def scored(run: Run, tmp_path: Path) -> Path:
    """ACME (hostile name, owner bob, manager maria, ARR 240000, renewal 2027-01-10) scored on 2026-11-23."""
    (tmp_path / "model.yaml").write_text(MODEL)
    (tmp_path / "readings.csv").write_text(READINGS)
    (tmp_path / "accounts.csv").write_text(
        "external_id,name,segment,arr,owner,renewal_date\n"
        f'ACME,"{HOSTILE}",enterprise,240000,bob,2027-01-10\n'
    )
    for args in (
        ("users", "add", "maria", "--role", "manager"),
        ("users", "add", "bob", "--role", "reviewer", "--manager", "maria"),
        ("users", "add", "olga", "--role", "ops"),
        ("accounts", "import", str(tmp_path / "accounts.csv")),
        ("readings", "import", str(tmp_path / "readings.csv")),
        ("model", "approve", str(tmp_path / "model.yaml")),
        ("score", "--as-of", "2026-11-23"),
    ):
        ok(run(*args))
    return tmp_path


def rescored(run: Run, tmp_path: Path) -> None:
    """usage falls to 30 and the account is scored on 2026-11-24 (score 34); 2026-11-23 is scored again too,
    which replaces that snapshot."""
    (tmp_path / "later.csv").write_text(LATER)
    ok(run("readings", "import", str(tmp_path / "later.csv")))
    ok(run("score", "--as-of", "2026-11-23"))
    ok(run("score", "--as-of", "2026-11-24"))


def check_baseline(card: dict[str, Any]) -> None:
    """The 2026-11-23 scorecard of the hand computation above."""
    assert (card["as_of"][:10], card["model_version"], card["score"], card["bucket"]) == (
        "2026-11-23", "t1", 67, "fine")
    assert card["bucket_color"] == "green" and card["provisional"] is False
    assert [(g["name"], g["subscore"]) for g in card["groups"]] == [("value", 85), ("care", 40)]
    rows = {k["kpi"]: (k["group"], k["raw"], k["normalized"], k["weight"], k["contribution"], k["rating"])
            for k in card["kpis"]}
    assert rows["usage"] == ("value", 85, 85, 60, pytest.approx(51), "strength")
    assert rows["tickets"] == ("care", 12, 40, 40, pytest.approx(16), "concern")
    assert rows["logins"] == (None, 30, None, 0, 0, "neutral")
    assert (card["concerns"], card["strengths"]) == (["tickets"], ["usage"])


def test_show_json_carries_the_scorecard_and_the_account_as_it_is_now(scored: Path, run: Run) -> None:
    assert "review 1 opened for ACME" in ok(run("--as", "bob", "review", "new", "ACME"))
    rescored(run, scored)  # the baseline is a copy: neither a newer snapshot nor a rescore of its day moves it
    data = json_of("review", "show", "1", "--json")
    assert (data["baseline"]["score"], data["baseline"]["bucket"]) == (67, "fine")
    check_baseline(data["baseline"]["scorecard"])
    context = data["account_context"]
    assert (context["id"], context["name"], context["segment"], context["arr"]) == (
        "ACME", HOSTILE, "enterprise", 240000)
    assert (context["renewal_date"], context["owner"]) == ("2027-01-10", "bob")
    assert (context["current"]["as_of"][:10], context["current"]["score"], context["current"]["bucket"]) == (
        "2026-11-24", 34, "risk")
    listed = json_of("review", "list", "--json")["items"][0]  # a list stays lean
    assert "scorecard" not in listed["baseline"] and "account_context" not in listed


def test_show_on_the_terminal_has_the_account_and_the_kpi_table(scored: Path, run: Run) -> None:
    ok(run("--as", "bob", "review", "new", "ACME"))
    out = ok(cli("review", "show", "1"))
    assert "\x1b" not in out and "\x07" not in out and "<b>" not in out
    assert "- Segment: enterprise · ARR: 240,000 · renewal: 2027-01-10 · owner: bob" in out
    assert "- Current score: 67.00 (fine) as of 2026-11-23" in out
    assert "## Baseline scorecard" in out
    assert "- As of: 2026-11-23 (model t1)" in out and "- Score: 67.00 (fine)" in out
    assert "- Areas of concern: tickets" in out and "- Strengths: usage" in out
    assert "| value | Value | 60.00 | 85.00 |" in out and "| care | Care | 40.00 | 40.00 |" in out
    assert "| kpi | group | raw | normalized | weight | contribution | status |" in out
    assert "| usage | value | 85.00 | 85.00 | 60.00 | 51.00 | strength |" in out
    assert "| tickets | care | 12.00 | 40.00 | 40.00 | 16.00 | concern |" in out
    assert "| logins | - | 30.00 | - | 0.00 | 0.00 | neutral |" in out


def test_export_markdown_and_html_show_the_baseline_escaped(scored: Path, run: Run, tmp_path: Path) -> None:
    ok(run("--as", "bob", "review", "new", "ACME"))
    rescored(run, scored)
    text = ok(cli("review", "export", "1", "--format", "md"))
    assert "<b>" not in text and "&lt;b&gt;Acme&lt;/b&gt;" in text and "\\[x\\](javascript:y)" in text
    assert "\x1b" not in text and "\x07" not in text
    assert "- Current score: 34.00 (risk) as of 2026-11-24" in text
    assert "| tickets | care | 12.00 | 40.00 | 40.00 | 16.00 | concern |" in text
    assert text.index("## Baseline scorecard") < text.index("## Account goals") < text.index("## Audit trail")
    target = tmp_path / "review-1.html"
    assert ok(cli("review", "export", "1", "--format", "html", "-o", str(target))) == f"wrote {target}\n"
    page = target.read_text()
    assert "<b>Acme</b>" not in page and "&lt;b&gt;Acme&lt;/b&gt;" in page and "\x1b" not in page
    assert 'http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;' in page
    assert "<script" not in page
    assert "ARR: 240,000 · renewal: 2027-01-10 · owner: bob" in page and "Current score: 34.00 (risk)" in page
    # the status cell of each KPI, coloured with the model's rating colours (defaults: orange, green)
    assert ('<td class="status"><span class="swatch" style="background: orange"></span>concern</td>' in page)
    assert ('<td class="status"><span class="swatch" style="background: green"></span>strength</td>' in page)
    assert "<td>tickets</td><td>care</td>" in page
    data = json.loads(ok(cli("review", "export", "1", "--format", "json")))
    check_baseline(data["baseline"]["scorecard"])
    assert data["account_context"]["current"]["score"] == 34 and "history" in data


def test_the_baseline_is_signed_and_old_reviews_without_one_still_verify(
    scored: Path, run: Run, db_url: str, tmp_path: Path
) -> None:
    form = tmp_path / "form.yaml"
    form.write_text(yaml.safe_dump(FORM))
    for _ in range(2):  # review 1 opened today; review 2 as a review opened before baselines were scorecards
        ok(run("--as", "bob", "review", "new", "ACME"))
        review_id = json_of("review", "list", "--json")["items"][0]["id"]
        if review_id == 2:
            with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
                db.execute("UPDATE reviews SET baseline = NULL WHERE id = 2")
        ok(run("--as", "bob", "review", "fill", str(review_id), str(form)))
        ok(run("--as", "bob", "review", "submit", str(review_id)))
        ok(run("--as", "maria", "review", "approve", str(review_id), "--comment", "Agreed"))
        assert ok(cli("review", "verify", str(review_id))) == (
            f"ok: review {review_id}: employee, manager signature(s) match, audit trail consistent\n")
        if review_id == 1:
            ok(run("--as", "maria", "review", "close", "1"))
    old = ok(cli("review", "show", "2"))
    assert "_No scorecard baseline_" in old and "- Baseline score: 67.0 (fine)" in old
    assert json_of("review", "show", "2", "--json")["baseline"]["scorecard"] is None
    assert "No scorecard baseline" in ok(cli("review", "export", "2", "--format", "html"))
    # the baseline is part of what both signed: changing it breaks both signatures
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        card = json.loads(db.execute("SELECT baseline FROM reviews WHERE id = 1").fetchone()[0])
        card["score"] = 99
        db.execute("UPDATE reviews SET baseline = ? WHERE id = 1", (json.dumps(card),))
    failed = cli("review", "verify", "1")
    assert "employee signature of bob no longer matches the content" in failed.stdout
    assert "manager signature of maria no longer matches the content" in failed.stdout
    assert error(failed, 1, stdout=None).startswith("error: review 1 failed verification")


def test_a_review_a_rule_opens_through_evaluate_carries_the_scorecard(scored: Path, run: Run) -> None:
    (scored / "rules.yaml").write_text(RULES)
    ok(run("--as", "olga", "rules", "activate", str(scored / "rules.yaml")))
    ok(cli("evaluate"))
    data = json_of("review", "show", "1", "--json")
    assert (data["kind"], data["priority"], data["reviewer"], data["approver"]) == ("rule", "P2", "bob", "maria")
    check_baseline(data["baseline"]["scorecard"])
    scorecard = json_of("scorecard", "ACME", "--json")  # the same service built both
    assert data["baseline"]["scorecard"] == {key: scorecard[key] for key in CARD_KEYS}
    assert data["account_context"]["owner"] == "bob" and data["account_context"]["arr"] == 240000
    assert "| tickets | care | 12.00 | 40.00 | 40.00 | 16.00 | concern |" in ok(cli("review", "export", "1"))
