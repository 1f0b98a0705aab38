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


# --- the scorecard additions: ARR, owners, KPI groups, the heat table, the at-risk scorecard pages ----------------

GROUPED_MODEL = """\
version: "g1"
groups:
  - {name: value, label: "Value"}
  - {name: care, label: "Care"}
kpis:
  - {name: usage, group: value, weight: 60, scale: {min: 0, max: 100}}
  - {name: tickets, group: care, weight: 40, scale: {min: 20, max: 0}, concern: {above: 10}}
  - {name: logins, weight: 0}
buckets:
  - {name: risk, below: 40}
  - {name: watch, below: 70}
  - {name: fine}
"""
HOSTILE = "<b>Acme</b> & co"
# (account, name, owner, arr, (usage, tickets, logins) on 2026-10-14, then on 2026-11-22). Hand computation:
# score = 0.6 * usage + 0.4 * (20 - tickets) * 5; the group subscores are value = usage, care = (20 - tickets) * 5.
#   A1: Oct 0.6*60 + 0.4*75 = 66 (watch); Nov 0.6*20 + 0.4*25 = 22 (risk)   value 60 -> 20, care 75 -> 25
#   A2: Oct = Nov 0.6*50 + 0.4*75 = 60 (watch)                                value 50, care 75
#   A3: Oct 0.6*80 + 40 = 88; Nov 0.6*90 + 40 = 94 (fine)                     value 80 -> 90, care 100
#   A4: Oct = Nov 0.6*30 + 0.4*90 = 54 (watch)                                value 30, care 90
# At risk: A1 (lowest bucket) and A3 (an open P1 escalation, added in the fixture).
GROUPED = (
    ("A1", HOSTILE, "bob", 100_000, (60, 5, 20), (20, 15, 5)),
    ("A2", "Bolt", "bob", 50_000, (50, 5, 20), (50, 5, 20)),
    ("A3", "Core", "carl", 30_000, (80, 0, 40), (90, 0, 40)),
    ("A4", "Dune", "", 20_000, (30, 2, 10), (30, 2, 10)),
)


@pytest.fixture
def grouped(run: Run, database: Database, tmp_path: Path) -> Run:
    """Four accounts scored with a small grouped model (no bucket colours) on 2026-10-15 and 2026-11-23; A3 has
    an open P1 escalation."""
    (tmp_path / "model.yaml").write_text(GROUPED_MODEL)
    accounts = ["external_id,name,segment,arr,owner,renewal_date"]
    readings = ["account,kpi,value,observed_at,source"]
    for ext, name, owner, arr, october, november in GROUPED:
        accounts.append(f'{ext},"{name}",enterprise,{arr},{owner},2027-09-01')
        for day, values in (("2026-10-14", october), ("2026-11-22", november)):
            for kpi, value in zip(("usage", "tickets", "logins"), values, strict=True):
                readings.append(f"{ext},{kpi},{value},{day}T06:00:00,x")
    (tmp_path / "accounts.csv").write_text("\n".join(accounts) + "\n")
    (tmp_path / "readings.csv").write_text("\n".join(readings) + "\n")
    for args in (
        ("users", "add", "maria", "--role", "manager"),
        ("users", "add", "bob", "--role", "reviewer", "--manager", "maria"),
        ("users", "add", "carl", "--role", "reviewer", "--manager", "maria"),
        ("accounts", "import", str(tmp_path / "accounts.csv")),
        ("readings", "import", str(tmp_path / "readings.csv")),
        ("model", "approve", str(tmp_path / "model.yaml")),
        ("score", "--as-of", "2026-10-15"),
        ("score", "--as-of", "2026-11-23"),
    ):
        ok(run(*args))
    with database.transaction() as session:
        from pulsecheck.workflow import escalations as escalation
        from pulsecheck.workflow.accounts import get_account

        a3 = get_account(session, "A3").id
        escalation.create(session, a3, "manual", "critical", "P1", "exec complaint", "carl", None,
                          session.scalar(select(func.max(ScoreSnapshot.as_of))))
    return run


def test_json_has_arr_owners_groups_heat_and_scorecards(grouped: Run) -> None:
    data = as_json(grouped("report", "portfolio", "--json"))
    assert data["bucket_colors"] == {"risk": "red", "watch": "#ffbf00", "fine": "green"}  # the model names none
    assert data["buckets"] == {"risk": 1, "watch": 2, "fine": 1}
    assert data["arr"] == {
        "total": 200_000,
        "by_bucket": {"risk": 100_000, "watch": 70_000, "fine": 30_000},  # watch: A2 50k + A4 20k
        "at_risk": 130_000,  # A1 100k + A3 30k
        "at_risk_by_bucket": {"risk": 100_000, "watch": 0, "fine": 30_000},
    }
    assert data["owners"] == [
        {"owner": "bob", "accounts": 2, "arr": 150_000, "mean_score": 41.0, "at_risk": 1, "arr_at_risk": 100_000,
         "open_escalations": 0},  # mean (22 + 60) / 2
        {"owner": "carl", "accounts": 1, "arr": 30_000, "mean_score": 94.0, "at_risk": 1, "arr_at_risk": 30_000,
         "open_escalations": 1},
        {"owner": None, "accounts": 1, "arr": 20_000, "mean_score": 54.0, "at_risk": 0, "arr_at_risk": 0,
         "open_escalations": 0},
    ]
    groups = data["groups"]
    assert groups["previous_as_of"].startswith("2026-10-15")
    assert [(g["name"], g["label"], g["mean"], g["accounts"], g["previous"], g["change"]) for g in groups["items"]] == [
        ("value", "Value", 47.5, 4, 55.0, -7.5),  # (20 + 50 + 90 + 30) / 4; before (60 + 50 + 80 + 30) / 4
        ("care", "Care", 72.5, 4, 85.0, -12.5),  # (25 + 75 + 100 + 90) / 4; before (75 + 75 + 100 + 90) / 4
    ]
    assert data["status_colors"] == {"concern": "orange", "strength": "green"}
    heat = data["kpi_heat"]
    assert heat["kpis"] == ["usage", "tickets", "logins"]
    rows = {row["account"]: {k: c["rating"] for k, c in row["cells"].items()} for row in heat["rows"]}
    assert rows == {
        "A1": {"usage": "concern", "tickets": "concern", "logins": "neutral"},  # 20 < 40; 15 above 10; no scale
        "A3": {"usage": "strength", "tickets": "strength", "logins": "neutral"},  # 90 >= 80; normalized 100
    }
    assert [r["account"] for r in heat["rows"]] == [a["account"] for a in data["at_risk"]]  # most urgent first
    assert data["scorecards"]["limit"] == 100
    cards = {c["account"]["id"]: c for c in data["scorecards"]["items"]}
    assert set(cards) == {"A1", "A3"} and (cards["A1"]["score"], cards["A1"]["concerns"]) == (22, ["usage", "tickets"])


def test_html_has_the_new_sections_and_links_each_at_risk_row_to_its_scorecard(grouped: Run, tmp_path: Path) -> None:
    import re

    out = tmp_path / "portfolio.html"
    ok(grouped("report", "portfolio", "--html", str(out)))
    page = out.read_text(encoding="utf-8")
    assert "<b>Acme" not in page and "&lt;b&gt;Acme&lt;/b&gt; &amp; co" in page
    assert 'href="http' not in page and "<script src" not in page and "<link" not in page  # svg xmlns aside
    assert re.search(r'id="total-arr-at-risk">130,000<', page) and re.search(r'id="total-arr">200,000<', page)
    risk_row = re.search(r'<tr data-bucket="risk">.*?</tr>', page, re.DOTALL)
    assert risk_row and "background: red" in risk_row[0]
    assert re.search(r'class="num arr" data-sort="100000.0">100,000<', risk_row[0])
    watch_row = re.search(r'<tr data-bucket="watch">.*?</tr>', page, re.DOTALL)
    assert watch_row and "background: #ffbf00" in watch_row[0] and ">70,000<" in watch_row[0]

    owners = re.search(r'id="owner-table">.*?</table>', page, re.DOTALL)
    assert owners is not None
    bob = re.search(r'<tr data-owner="bob">.*?</tr>', owners[0], re.DOTALL)
    assert bob and re.findall(r'<td class="num [a-z-]+"[^>]*>([^<]*)<', bob[0]) == [
        "2", "150,000", "41.00", "1", "100,000", "0"
    ]
    assert '<tr data-owner="">' in owners[0] and "no owner" in owners[0]

    value = re.search(r'<tr data-group="value">.*?</tr>', page, re.DOTALL)
    assert value and ">47.50<" in value[0] and ">55.00<" in value[0] and "▼ -7.50" in value[0]

    heat = re.search(r'id="heat-table">.*?</table>', page, re.DOTALL)
    assert heat is not None
    a1 = re.search(r'<tr data-account="A1">.*?</tr>', heat[0], re.DOTALL)
    a3 = re.search(r'<tr data-account="A3">.*?</tr>', heat[0], re.DOTALL)
    assert a1 is not None and a3 is not None
    assert re.findall(r'class="heat (heat-[a-z]+)" data-kpi="(\w+)"', a1[0]) == [
        ("heat-concern", "usage"), ("heat-concern", "tickets"), ("heat-neutral", "logins")
    ]
    assert a1[0].count("background: orange") == 2  # the model's (default) concern colour
    assert re.findall(r'class="heat (heat-[a-z]+)" data-kpi="(\w+)"', a3[0]) == [
        ("heat-strength", "usage"), ("heat-strength", "tickets"), ("heat-neutral", "logins")
    ]
    assert a3[0].count("background: green") == 2 and "at most 100" in page  # strengths green; the bound said

    at_risk = re.search(r'id="at-risk-table">.*?</table>', page, re.DOTALL)
    assert at_risk is not None
    links = {account: anchor for anchor, account in re.findall(r'<a href="#(scorecard-\d+)">(A\d)</a>', at_risk[0])}
    assert set(links) == {"A1", "A3"}
    for account, anchor in links.items():
        target = re.search(rf'<section class="scorecard-page" id="{anchor}" data-account="(\w+)">(.*?)</section>', page,
                           re.DOTALL)
        assert target and target[1] == account and f"Scorecard: {account}" in target[2]
    a1_page = re.search(rf'id="{links["A1"]}".*?</section>', page, re.DOTALL)
    assert a1_page and "Score <strong>22.00</strong> (risk)" in a1_page[0]
    assert "Areas of concern: usage, tickets" in a1_page[0]


def test_terminal_summary_has_arr_owners_and_groups(grouped: Run) -> None:
    out = ok(grouped("report", "portfolio"))
    assert "ARR at risk      130,000 of 200,000" in out
    assert "Owners: 3" in out and "150,000" in out
    assert "value 47.5 (-7.5), care 72.5 (-12.5)" in out
