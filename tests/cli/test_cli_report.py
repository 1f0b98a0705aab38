"""`report portfolio` as a user runs it on the sample portfolio: the JSON shape and its counts against the
database, --as-of and --segment, the HTML file, the terminal summary, and bad input with its exit codes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import func, select

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, Escalation, ScoreSnapshot
from tests.conftest import Templates, as_json, error, installed, ok, scored_sample

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = "2026-11-24T09:00:00+00:00"

Run = Callable[..., Result]


@pytest.fixture
def sample(run: Run, database: Database, templates: Templates) -> Run:
    """The sample portfolio through the CLI, the example model approved, scored at three month ends."""
    templates.load(database, templates.seeded("scored_sample", scored_sample))
    return run


def latest_buckets(database: Database, segment: str | None = None) -> dict[str, int]:
    """Bucket counts straight from the database: each account's newest snapshot, one account at a time."""
    counts = dict.fromkeys(("unhealthy", "neutral", "healthy"), 0)
    with database.transaction() as session:
        for account in session.scalars(select(Account)):
            if segment and account.segment != segment:
                continue
            bucket = session.scalar(
                select(ScoreSnapshot.bucket)
                .where(ScoreSnapshot.account_id == account.id)
                .order_by(ScoreSnapshot.as_of.desc())
                .limit(1)
            )
            if bucket:
                counts[bucket] += 1
    return counts


def test_json_shape_and_counts_equal_the_database(sample: Run, database: Database) -> None:
    data = as_json(sample("report", "portfolio", "--json"))
    assert {
        "as_of",
        "model_version",
        "buckets",
        "at_risk",
        "overdue_reviews",
        "open_escalations",
        "open_deviations",
    } <= set(data)
    assert data["as_of"] == NOW and data["model_version"] == "2026.11" and data["segment"] is None
    assert data["buckets"] == latest_buckets(database)
    assert list(data["buckets"]) == ["unhealthy", "neutral", "healthy"]  # the model's order
    assert data["bucket_colors"] == {"unhealthy": "orange", "neutral": "yellow", "healthy": "blue"}
    with database.transaction() as session:
        assert data["accounts"] == session.scalar(select(func.count(Account.id))) == 12
    assert sum(b["accounts"] for b in data["score_histogram"]) == sum(data["buckets"].values())
    assert [p["month"] for p in data["trend"]] == ["2026-09", "2026-10", "2026-11"]
    unhealthy = data["buckets"]["unhealthy"]
    assert unhealthy > 0 and len(data["at_risk"]) == unhealthy  # no escalation yet: at risk = lowest bucket
    first = data["at_risk"][0]
    assert set(first) == {
        "account",
        "name",
        "segment",
        "owner",
        "score",
        "bucket",
        "priority",
        "priority_score",
        "reasons",
        "days_to_renewal",
        "open_escalations",
    }
    assert [a["priority"] for a in data["at_risk"]] == sorted(a["priority"] for a in data["at_risk"])
    assert data["open_escalations"] == {"count": 0, "by_priority": {}, "items": []}
    assert data["overdue_reviews"] == []
    assert set(data["open_deviations"]) == {"count", "by_kind", "accepted_by_kind"}


def test_an_escalation_and_an_overdue_review_show_up(sample: Run, database: Database, monkeypatch: Any) -> None:
    monkeypatch.setenv("PULSECHECK_NOW", "2026-11-01T09:00:00+00:00")
    ok(sample("--as", "bob", "review", "new", "ACME", "--due", "2026-11-10"))
    monkeypatch.setenv("PULSECHECK_NOW", NOW)
    with database.transaction() as session:
        from pulsecheck.workflow import escalations as escalation
        from pulsecheck.workflow.accounts import get_account

        escalation.create(
            session,
            get_account(session, "GLOBEX").id,
            "manual",
            "critical",
            "P1",
            "exec complaint",
            "bob",
            None,
            session.scalar(select(func.max(ScoreSnapshot.as_of))),
        )
    data = as_json(sample("report", "portfolio", "--json"))
    (review,) = data["overdue_reviews"]
    assert (review["account"], review["state"], review["days_overdue"]) == ("ACME", "draft", 13)
    assert data["open_escalations"]["by_priority"]["P1"]["count"] == 1
    (globex,) = [a for a in data["at_risk"] if a["account"] == "GLOBEX"]
    assert globex["bucket"] != "unhealthy"  # at risk through its escalation alone
    assert (globex["priority"], globex["open_escalations"]) == ("P1", 1)
    assert "escalation P1: exec complaint" in globex["reasons"]
    assert data["at_risk"][0]["priority"] == "P1"
    with database.transaction() as session:
        assert data["open_escalations"]["count"] == session.scalar(select(func.count(Escalation.id)))


def test_as_of_and_segment(sample: Run, database: Database) -> None:
    october = as_json(sample("report", "portfolio", "--as-of", "2026-10-31", "--json"))
    assert october["as_of"].startswith("2026-10-31T23:59:59")
    assert [p["month"] for p in october["trend"]] == ["2026-09", "2026-10"]
    smb = as_json(sample("report", "portfolio", "--segment", "smb", "--json"))
    assert smb["segment"] == "smb" and smb["buckets"] == latest_buckets(database, "smb")
    assert {a["segment"] for a in smb["at_risk"]} <= {"smb"}
    assert sum(smb["buckets"].values()) < sum(as_json(sample("report", "portfolio", "--json"))["buckets"].values())


def test_html_file_is_written_and_self_contained(sample: Run, tmp_path: Path) -> None:
    out = tmp_path / "portfolio.html"
    result = ok(sample("report", "portfolio", "--html", str(out)))
    assert result.startswith(f"wrote {out}")
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") >= 4
    assert "<script src" not in html and "<link" not in html and "@import" not in html
    assert "fill:orange" in html.replace(" ", "") or "orange" in html  # the model's bucket colour is used
    data = as_json(sample("report", "portfolio", "--html", str(out), "--json"))
    assert data["html"] == str(out)


def test_terminal_summary(sample: Run) -> None:
    out = ok(sample("report", "portfolio"))
    assert "model 2026.11" in out and "12 accounts" in out
    assert "unhealthy" in out and "At risk:" in out and "overdue reviews" in out
    assert any(bar in out for bar in "▁▂▃▄▅▆▇█")  # sparklines


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--segment", "nowhere"], "error: --segment nowhere: unknown segment (known: enterprise, mid-market, smb)"),
        (["--as-of", "2026-13-45"], "error: --as-of"),
        (["--html", "/nonexistent-dir/report.html"], "error: --html /nonexistent-dir/report.html: no such directory"),
    ],
)
def test_bad_input_exits_2_with_one_line(sample: Run, args: list[str], message: str) -> None:
    result = sample("report", "portfolio", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_html_path_that_is_a_directory_or_read_only(sample: Run, tmp_path: Path) -> None:
    result = sample("report", "portfolio", "--html", str(tmp_path))
    assert (result.exit_code, result.stderr) == (2, f"error: --html {tmp_path}: is a directory\n")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        result = sample("report", "portfolio", "--html", str(locked / "r.html"))
        assert result.exit_code == 2 and "not writable" in result.stderr


def test_as_a_subprocess(sample: Run, db_url: str, tmp_path: Path) -> None:
    env = {"PULSECHECK_DATABASE_URL": db_url, "PULSECHECK_NOW": NOW}
    assert as_json(installed("report", "portfolio", "--json", cwd=tmp_path, env=env))["model_version"] == "2026.11"
    bad = installed("report", "portfolio", "--segment", "x", cwd=tmp_path, env=env)
    assert error(bad, 2).startswith("error: --segment x: unknown segment")
