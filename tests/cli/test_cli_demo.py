"""`pulsecheck demo` (the main job of `make run`): the whole story runs and leaves its outputs behind."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from click.testing import CliRunner

from pulsecheck.cli import cli


def test_the_demo_runs_end_to_end_and_writes_its_archive_report_and_notifications(tmp_path, monkeypatch):
    monkeypatch.delenv("PULSECHECK_NOW", raising=False)
    monkeypatch.delenv("PULSECHECK_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    for expected in (
        "model 2027.01 of scorecard.yaml approved by olga",  # the grouped scorecard model, with its inputs
        "cashflows.csv: 44 rows imported",
        "financials.csv: 12 rows imported",
        "maria: approve -> approved",  # the review's life
        "three-low-in-a-row      escalate",  # the rules
        "verify: ok",  # the sealed cycle
        "level 1 (manager) notified maria",  # the ladder
        "reminder 1/2 to",  # reminders
        "cadence smb: 2 review(s) opened",  # cadence
    ):
        assert expected in out
    assert "--config" in out and " serve\n" in out and "maria (manager)" in out  # how to start the web app
    assert out.rstrip().splitlines()[-1].endswith("password 'pulsecheck-demo'")  # the last thing it says
    outdir = tmp_path / "out"
    from pulsecheck.demo.story import DEMO_PASSWORD, DEMO_WEB_USERS
    from pulsecheck.storage.db import Database
    from pulsecheck.workflow.signin import Limits, sign_in

    database = Database(f"sqlite:///{outdir / 'demo.db'}")
    with database.transaction() as session:  # the printed password signs them in
        for name, _ in DEMO_WEB_USERS:
            assert sign_in(session, name, DEMO_PASSWORD, "127.0.0.1", datetime.now(UTC), Limits()) is not None
    database.dispose()
    assert (outdir / "portfolio.html").read_text().lstrip().lower().startswith("<!doctype html")
    assert "<svg" in (outdir / "portfolio.html").read_text()
    assert (outdir / "cycle-1.html").is_file() and (outdir / "cycle-1.md").is_file()
    lines = [json.loads(line) for line in (outdir / "notifications.jsonl").read_text().splitlines()]
    assert {"escalation_level_up", "review_due", "review_opened", "review_submitted"} <= {n["kind"] for n in lines}
    assert len({n["dedupe_key"] for n in lines}) == len(lines)  # nothing delivered twice
    # A second run starts over: the same story, not twice the rows.
    again = CliRunner().invoke(cli, ["demo", "--dir", str(outdir)], catch_exceptions=False)
    assert again.exit_code == 0
    assert len((outdir / "notifications.jsonl").read_text().splitlines()) == len(lines)


def test_the_demo_shows_acme_s_scorecard_and_the_logins_rule_firing(tmp_path, monkeypatch):
    monkeypatch.delenv("PULSECHECK_NOW", raising=False)
    monkeypatch.delenv("PULSECHECK_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    # ACME's scorecard, the README's worked example (scorecard.yaml on the sample files as of 2026-11-24):
    # npv = -20,000 + 8,000/1.1 + 9,000/1.21 + 10,000/1.331 = 2,223.89 (22.24 on 0..10,000: below 40, a concern);
    # usage 0 (below the model's 30: a concern); ltv = (20,000 - 6,000) x 46 months - 30,000 = 614,000 (61.4)
    start = lines.index("ACME Acme Corp  segment enterprise  ARR 240000.00  renewal 2027-01-10  owner bob")
    card = lines[start : lines.index("history:", start)]
    assert "score 57.05 (neutral) as of 2026-11-24, model 2027.01" in card
    assert "Business value (business_value): 7.41" in card  # (10 x 22.24 + 20 x 0) / 30
    assert [line.split()[:2] for line in card if line.startswith(("npv ", "ltv ", "logins "))] == [
        ["npv", "2223.89"], ["ltv", "614000.00"], ["logins", "205.00"],  # logins: tracked, weight 0
    ]
    assert "areas of concern: npv, usage" in card
    # readings.csv: ACME's logins were 410 on 2026-10-20 (the newest at or before 30 days before 2026-11-24 18:00)
    # and 205 on 2026-11-24: (205 - 410) / 410 = -50%, at or below the rule's -40
    assert "FIRES logins-drop: kpi_change_pct.logins_30d lte -40 (-50.0: True)" in lines
    escalated = [line.split() for line in lines if line.startswith("ACME ") and " logins-drop " in line]
    assert escalated[0][:4] == ["ACME", "logins-drop", "escalate", "medium"]  # escalated to the owner, bob
    assert " ".join(escalated[0][5:]) == "to bob: logins -50% against 30 days ago"
