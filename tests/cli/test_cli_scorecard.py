"""`pulsecheck scorecard`: a small grouped model scored twice, its scorecard checked against values computed by
hand; export as Markdown and HTML with hostile names; submit, four-eyes approval, the audit chain after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TWO_GROUP_MODEL, Run, as_json, error, ok

HOSTILE = "<script>alert(1)</script> | [x](javascript:y) \x1b]0;pwn\x07"

MODEL = TWO_GROUP_MODEL

# Hand computation, as of 2026-11-23 (usage 85, tickets 12, logins 30):
#   usage: normalized 85 (>= 80: strength), contribution 0.6 * 85 = 51
#   tickets: normalized (20 - 12) / 20 * 100 = 40, raw 12 above 10: concern, contribution 0.4 * 40 = 16
#   score 67 (fine); value 85, care 40.
# As of 2026-10-15 (usage 50, tickets 12): score 0.6 * 50 + 16 = 46 (risk); the score rose 21 over 30+ days.
READINGS = """\
account,kpi,value,observed_at,source
ACME,usage,50,2026-10-14T06:00:00,x
ACME,tickets,12,2026-10-14T06:00:00,x
ACME,logins,30,2026-10-14T06:00:00,x
ACME,usage,85,2026-11-22T06:00:00,x
ACME,tickets,12,2026-11-22T06:00:00,x
ACME,logins,30,2026-11-22T06:00:00,x
"""


@pytest.fixture
def scored(run: Run, tmp_path: Path) -> Path:
    """ACME (with a hostile name) scored on 2026-10-15 and 2026-11-23 with the small grouped model."""
    (tmp_path / "model.yaml").write_text(MODEL)
    (tmp_path / "readings.csv").write_text(READINGS)
    (tmp_path / "accounts.csv").write_text(
        "external_id,name,segment,arr,owner,renewal_date\n"
        f'ACME,"{HOSTILE}",enterprise,240000,bob,2027-01-10\n'
    )
    for args in (
        ("users", "add", "maria", "--role", "manager"),
        ("users", "add", "hank", "--role", "manager"),
        ("users", "add", "bob", "--role", "reviewer", "--manager", "maria"),
        ("accounts", "import", str(tmp_path / "accounts.csv")),
        ("readings", "import", str(tmp_path / "readings.csv")),
        ("model", "approve", str(tmp_path / "model.yaml")),
        ("score", "--as-of", "2026-10-15"),
        ("score", "--as-of", "2026-11-23"),
    ):
        ok(run(*args))
    return tmp_path


def test_scorecard_json_matches_the_hand_computation(scored: Path, run: Run) -> None:
    data = as_json(run("scorecard", "ACME", "--json"))
    assert (data["score"], data["bucket"], data["bucket_color"]) == (67, "fine", "green")
    assert [(g["name"], g["label"], g["subscore"]) for g in data["groups"]] == [
        ("value", "Value", 85), ("care", "Care", 40)
    ]
    kpis = {k["kpi"]: k for k in data["kpis"]}
    assert (kpis["usage"]["raw"], kpis["usage"]["normalized"], kpis["usage"]["weight"]) == (85, 85, 60)
    assert kpis["usage"]["contribution"] == pytest.approx(51)
    assert kpis["usage"]["rating"] == "strength"
    assert (kpis["tickets"]["normalized"], kpis["tickets"]["rating"]) == (40, "concern")
    assert kpis["tickets"]["contribution"] == pytest.approx(16)
    assert (kpis["logins"]["raw"], kpis["logins"]["weight"]) == (30, 0)
    assert (data["concerns"], data["strengths"]) == (["tickets"], ["usage"])
    assert data["success_vector"]["direction"] == "positive"
    assert data["success_vector"]["change"] == pytest.approx(21)
    assert [(h["score"], h["groups"]) for h in data["history"]] == [
        (46, {"value": 50, "care": 40}), (67, {"value": 85, "care": 40})
    ]


def test_scorecard_as_of_reads_the_older_snapshot(scored: Path, run: Run) -> None:
    data = as_json(run("scorecard", "ACME", "--as-of", "2026-10-20", "--json"))
    assert (data["score"], data["bucket"], data["concerns"], data["strengths"]) == (46, "risk", ["tickets"], [])
    assert data["success_vector"]["direction"] == "neutral"  # nothing 30 days before: no change to go by


def test_scorecard_terminal_strips_controls(scored: Path, run: Run) -> None:
    out = ok(run("scorecard", "ACME"))
    assert "\x1b" not in out and "\x07" not in out
    assert "areas of concern: tickets" in out and "strengths: usage" in out
    assert "success vector: positive" in out


def test_scorecard_of_an_account_never_scored_is_refused(scored: Path, run: Run) -> None:
    assert "no score snapshot" in error(run("scorecard", "ACME", "--as-of", "2026-01-01"), 1)
    assert "ACME2" in error(run("scorecard", "ACME2"), 2)



def test_export_markdown_escapes_a_hostile_name(scored: Path, run: Run) -> None:
    text = ok(run("scorecard", "export", "ACME", "--format", "md"))
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "\\[x\\](javascript:y)" in text and "\x1b" not in text and "\x07" not in text
    assert "| usage | value | 85 | 85 | 60 | 51" in text.replace(".00", "").replace(".0 ", " ")
    assert "- Areas of concern: tickets" in text and "- Success vector: positive" in text


def test_export_html_is_offline_and_escaped(scored: Path, run: Run, tmp_path: Path) -> None:
    target = tmp_path / "card.html"
    assert ok(run("scorecard", "export", "ACME", "--format", "html", "-o", str(target))) == f"wrote {target}\n"
    page = target.read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;' in page
    assert "http://" not in page and "https://" not in page
    assert "background: green" in page and "background: orange" in page  # bucket fine; tickets a concern


def test_export_to_a_directory_is_bad_input(scored: Path, run: Run, tmp_path: Path) -> None:
    assert "is a directory" in error(run("scorecard", "export", "ACME", "-o", str(tmp_path)), 2)


def test_submit_then_four_eyes_approval_joins_the_audit_chain(scored: Path, run: Run, tmp_path: Path) -> None:
    (tmp_path / "signed.pdf").write_bytes(b"%PDF- the uploaded copy")
    submitted = as_json(run("--as", "bob", "scorecard", "submit", "ACME", "--comment", "Q4", "--attach",
                            str(tmp_path / "signed.pdf"), "--json"))
    assert (submitted["state"], submitted["submitted_by"], submitted["approver"]) == ("submitted", "bob", "maria")
    assert (submitted["score"], submitted["bucket"]) == (67, "fine")
    assert [a["filename"] for a in submitted["attachments"]] == ["signed.pdf"]
    number = str(submitted["id"])
    assert "four-eyes" in error(run("--as", "bob", "scorecard", "approve", number), 1)
    assert "not hank" in error(run("--as", "hank", "scorecard", "approve", number), 1)  # not asked, not bob's manager
    approved = as_json(run("--as", "maria", "scorecard", "approve", number, "--json"))
    assert (approved["state"], approved["approved_by"]) == ("approved", "maria")
    assert approved["digest"] == submitted["digest"]
    assert "is approved" in error(run("--as", "maria", "scorecard", "reject", number, "--comment", "late"), 1)
    assert "audit chain ok" in ok(run("audit", "verify"))


def test_reject_needs_a_comment(scored: Path, run: Run) -> None:
    number = str(as_json(run("--as", "bob", "scorecard", "submit", "ACME", "--json"))["id"])
    assert "comment is required" in error(run("--as", "maria", "scorecard", "reject", number), 1)
    rejected = as_json(run("--as", "maria", "scorecard", "reject", number, "--comment", "redo", "--json"))
    assert (rejected["state"], rejected["decision_comment"]) == ("rejected", "redo")
    ok(run("users", "add", "olga", "--role", "ops"))
    assert "not olga" in error(run("--as", "olga", "scorecard", "submit", "ACME"), 1)  # ops does not submit
