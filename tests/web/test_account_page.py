"""`/accounts/{id}`: the scorecard of a small grouped model scored three times through the CLI, checked against values
computed by hand: the chart's points, group subscores, KPI rows classed and coloured by rating, the history; the
attachments of the account's reviews and scorecards; hostile names inert."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import User
from tests.conftest import Factory, invoke, ok
from tests.web.conftest import Client

MODEL = """\
version: "t1"
groups:
  - {name: value, label: "Value"}
  - {name: care, label: "Care"}
kpis:
  - {name: usage, group: value, weight: 60, scale: {min: 0, max: 100}}
  - {name: tickets, group: care, weight: 40, scale: {min: 20, max: 0}, concern: {above: 10}}
buckets:
  - {name: risk, below: 50, color: red}
  - {name: fine, color: "#2b8a3e"}
statuses: {concern: "#ff8800", strength: teal}
"""

# Hand computation (usage: 0-100 -> 0-100, weight 60; tickets: 20-0 -> 0-100, weight 40, concern above 10;
# usage is a strength from normalized 80):
#   2026-10-15: usage 50, tickets 12 -> value 50, care (20-12)/20*100 = 40; score .6*50 + .4*40 = 46 (risk)
#   2026-11-04: usage 70, tickets 16 -> value 70, care 20; score 42 + 8 = 50 (fine)
#   2026-11-23: usage 85, tickets 12 -> value 85, care 40; score 51 + 16 = 67 (fine)
READINGS = """\
account,kpi,value,observed_at,source
ACME,usage,50,2026-10-14T06:00:00,x
ACME,tickets,12,2026-10-14T06:00:00,x
ACME,usage,70,2026-11-03T06:00:00,x
ACME,tickets,16,2026-11-03T06:00:00,x
ACME,usage,85,2026-11-22T06:00:00,x
ACME,tickets,12,2026-11-22T06:00:00,x
"""
DAYS = ("2026-10-15", "2026-11-04", "2026-11-23")
HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def scored(team: Factory, database: Database, os_login_admin: str, tmp_path: Path) -> Database:
    (tmp_path / "model.yaml").write_text(MODEL)
    (tmp_path / "readings.csv").write_text(READINGS)
    ok(invoke(database.url, "readings", "import", str(tmp_path / "readings.csv")))
    ok(invoke(database.url, "--as", "olga", "model", "approve", str(tmp_path / "model.yaml")))
    for day in DAYS:
        ok(invoke(database.url, "score", "--as-of", day))
    return database


def _series(page: str, name: str) -> list[tuple[float, float]]:
    """The (cx, cy) of the points of one line of the chart, left to right."""
    found = re.search(rf'<g class="series [^"]*" data-series="{name}">(.*?)</g>', page, re.S)
    assert found, f"no series {name}"
    return [(float(x), float(y)) for x, y in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', found.group(1))]


def test_the_chart_draws_the_stored_scores_at_hand_computed_places(scored: Database, client: Client) -> None:
    page = client("bob").get("/accounts/ACME").text
    # The plot is 590 wide from x=40 and 180 high from y=10, scores 0-100 bottom to top; time is proportional:
    # 20 days then 19 (the snapshots are at the same hour), so the middle point is at 40 + 590 * 20/39 = 342.6.
    # Score 46 -> y = 10 + 180 * .54 = 107.2; 50 -> 100; 67 -> 10 + 180 * .33 = 69.4.
    assert _series(page, "score") == [(40.0, 107.2), (342.6, 100.0), (630.0, 69.4)]
    assert _series(page, "value") == [(40.0, 100.0), (342.6, 64.0), (630.0, 37.0)]  # 50, 70, 85
    assert _series(page, "care") == [(40.0, 118.0), (342.6, 154.0), (630.0, 118.0)]  # 40, 20, 40
    assert '<polyline points="40.0,107.2 342.6,100.0 630.0,69.4"/>' in page
    assert "<script" not in page and "style=" not in page  # the CSP allows neither


def test_subscores_kpis_and_history_of_the_scorecard(scored: Database, client: Client) -> None:
    page = client("bob").get("/accounts/ACME").text
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    assert re.search(r"67\.0\s+fine", text)  # the score and its bucket
    assert 'fill="#2b8a3e"' in page  # the bucket's colour from the model
    groups = page[page.index('<table class="groups">'):]
    assert re.search(r"Value.*?60.*?85\.0", groups, re.S) and re.search(r"Care.*?40.*?40\.0", groups, re.S)
    rows = dict(re.findall(r'<tr class="(kpi-\w+)" data-kpi="(\w+)"', page))
    assert {kpi: css for css, kpi in rows.items()} == {"usage": "kpi-strength", "tickets": "kpi-concern"}
    tickets = re.search(r'data-kpi="tickets">(.*?)</tr>', page, re.S)
    usage = re.search(r'data-kpi="usage">(.*?)</tr>', page, re.S)
    assert tickets and 'fill="#ff8800"' in tickets.group(1) and "concern" in tickets.group(1)
    assert usage and 'fill="teal"' in usage.group(1) and "strength" in usage.group(1)
    assert "Areas of concern: tickets" in text and "Strengths: usage" in text
    history = page[page.index('<table class="history">'):]
    scores = re.findall(r"<tr><td>[^<]+</td><td>([\d.]+)</td>", history)
    assert scores == ["67.0", "50.0", "46.0"]  # newest first


def test_an_account_without_a_score_says_so(team: Factory, client: Client) -> None:
    page = client("bob").get("/accounts/ACME").text
    assert "No score yet." in page and "<svg class=\"chart\"" not in page


def test_hostile_names_render_inert(team: Factory, database: Database, os_login_admin: str, client: Client,
                                    tmp_path: Path) -> None:
    team.account("EVIL", owner="bob", name=HOSTILE)
    (tmp_path / "readings.csv").write_text(READINGS.replace("ACME", "EVIL"))
    (tmp_path / "model.yaml").write_text(MODEL.replace('label: "Care"', "label: \"<img src=x onerror=alert(1)>\""))
    ok(invoke(database.url, "readings", "import", str(tmp_path / "readings.csv")))
    ok(invoke(database.url, "--as", "olga", "model", "approve", str(tmp_path / "model.yaml")))
    ok(invoke(database.url, "score", "--as-of", DAYS[-1]))
    page = client("bob").get("/accounts/EVIL").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_attachments_of_reviews_and_scorecards_are_listed_and_downloaded(scored: Database, client: Client,
                                                                        team: Factory, now: Any) -> None:
    from pulsecheck.workflow import scorecard_approvals
    from pulsecheck.workflow.attachments import Upload
    from pulsecheck.workflow.reviews import attach_file

    review = team.review()
    with scored.transaction() as session:
        bob = session.scalar(select(User).where(User.name == "bob"))
        assert bob is not None
        attach_file(session, review, Upload(f"{HOSTILE}.html", b"<script>alert(1)</script>"), bob, now, "minutes")
        card = scorecard_approvals.submit(session, "ACME", bob, now + timedelta(minutes=1),
                                          upload=Upload("scorecard.pdf", b"%PDF-1.4 card")).id
    bob_client = client("bob")
    page = bob_client.get("/accounts/ACME").text
    assert f'href="/reviews/{review}/attachments/1"' in page and "&lt;script&gt;" in page
    assert f'href="/accounts/ACME/scorecards/{card}/attachments/1"' in page and "scorecard.pdf" in page
    download = bob_client.get(f"/accounts/ACME/scorecards/{card}/attachments/1")
    assert download.status_code == 200 and download.content == b"%PDF-1.4 card"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert bob_client.get(f"/accounts/ACME/scorecards/{card}/attachments/2").status_code == 404
    assert bob_client.get(f"/accounts/NOPE/scorecards/{card}/attachments/1").status_code == 404
