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
        "maria: approve -> approved",  # the review's life
        "drop-with-complaints    escalate",  # the rules
        "verify: ok",  # the sealed cycle
        "level 1 (manager) notified maria",  # the ladder
        "reminder 1/2 to",  # reminders
        "cadence smb: 2 review(s) opened",  # cadence
    ):
        assert expected in out
    assert "--config" in out and " serve\n" in out and "maria (manager)" in out  # how to start the web app
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
