"""`report portfolio` reads on SQLAlchemy Core (issue 17): run as the installed script, its summary and its
`--json` load neither the ORM nor the mapped classes, and the JSON says what the rows set up here say. The
expected values are worked out from the data below by hand (the priority matrix's defaults), not by pulsecheck."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from pulsecheck.storage.db import Database
from pulsecheck.storage.more_tables import DEVIATIONS, ESCALATIONS, ISSUES
from pulsecheck.storage.tables import ACCOUNTS, SCORE_SNAPSHOTS, SCORING_MODELS
from tests.cli.test_cold_start_imports import imported, loaded
from tests.conftest import NOW, TWO_GROUP_MODEL, Factory, as_json, installed, ok

ORM_SIDE = (
    "sqlalchemy.orm",
    "pulsecheck.storage.models",
    "pulsecheck.storage.more_models",
    "pulsecheck.storage.chain",
    "pulsecheck.storage.bulk",
)
OCTOBER, BEFORE, LATEST = NOW - timedelta(days=40), NOW - timedelta(days=2), NOW - timedelta(days=1)


@pytest.fixture
def book(factory: Factory, database: Database, os_login_admin: str) -> dict[str, int]:
    """ACME (bob's, enterprise, ARR 120k, renewal in 52 days: scored 70 `fine`, one open P1 escalation), GLOBEX
    (carol's, smb, ARR 50k, renewal in 37 days, three open complaints: scored 80 in October, 40 `risk` now) and
    INITECH (smb, nobody's, never scored, an escalation resolved before now); an open stale-data deviation on
    GLOBEX and an accepted portfolio-wide one. The model: TWO_GROUP_MODEL (risk below 50, fine)."""
    factory.team()
    factory.user("carol", "reviewer")
    factory.account("GLOBEX", owner="carol", segment="smb", arr=50000.0, renewal_date=date(2026, 12, 31))
    factory.account("INITECH", segment="smb")
    with database.engine.begin() as conn:
        model = conn.scalar(
            insert(SCORING_MODELS)
            .values(version="t1", content=TWO_GROUP_MODEL, sha256="0" * 64, status="approved")
            .returning(SCORING_MODELS.c.id)
        )
        ids: dict[str, int] = dict(conn.execute(select(ACCOUNTS.c.external_id, ACCOUNTS.c.id)).all())

        def snapshot(account: str, when: Any, score: float, bucket: str, value: float, care: float) -> dict[str, Any]:
            return {
                "account_id": ids[account],
                "as_of": when,
                "score": score,
                "bucket": bucket,
                "model_id": model,
                "components": [],
                "groups": {"value": value, "care": care},
                "provisional": False,
            }

        conn.execute(
            insert(SCORE_SNAPSHOTS),
            [
                snapshot("GLOBEX", OCTOBER, 80.0, "fine", 90.0, 70.0),
                snapshot("GLOBEX", BEFORE, 40.0, "risk", 30.0, 50.0),
                snapshot("ACME", LATEST, 70.0, "fine", 80.0, 55.0),
            ],
        )

        def escalation(account: str, opened: Any, status: str, resolved: Any = None) -> dict[str, Any]:
            return {
                "account_id": ids[account],
                "rule_id": "usage-drop",
                "severity": "high",
                "priority": "P1",
                "priority_score": 61.5,
                "reason": "usage fell",
                "owner": "bob",
                "level": 0,
                "opened_at": opened,
                "status": status,
                "resolved_at": resolved,
            }

        conn.execute(
            insert(ESCALATIONS),
            [
                escalation("ACME", NOW - timedelta(days=3), "open"),
                escalation("INITECH", NOW - timedelta(days=20), "resolved", NOW - timedelta(days=10)),
            ],
        )
        conn.execute(
            insert(ISSUES),
            [
                {
                    "external_id": f"C{n}",
                    "account_id": ids["GLOBEX"],
                    "kind": "complaint",
                    "severity": "medium",
                    "status": "open",
                    "opened_at": NOW - timedelta(days=5),
                }
                for n in range(3)
            ],
        )
        conn.execute(
            insert(DEVIATIONS),
            [
                {
                    "account_id": ids["GLOBEX"],
                    "kind": "stale",
                    "subject": "usage",
                    "detail": "old",
                    "found_at": BEFORE,
                    "last_seen_at": BEFORE,
                    "status": "open",
                },
                {
                    "account_id": None,
                    "kind": "missing",
                    "subject": "",
                    "detail": "x",
                    "found_at": BEFORE,
                    "last_seen_at": BEFORE,
                    "status": "accepted",
                },
            ],
        )
    return ids


def env(db_url: str) -> dict[str, str]:
    return {"PULSECHECK_DATABASE_URL": db_url, "PULSECHECK_NOW": NOW.isoformat()}


@pytest.mark.parametrize(
    "args",
    [("report", "portfolio"), ("report", "portfolio", "--json"), ("report", "portfolio", "--segment", "smb", "--json")],
)
def test_the_report_loads_no_orm(db_url: str, book: dict[str, int], tmp_path: Path, args: tuple[str, ...]) -> None:
    modules = imported(db_url, *args, cwd=tmp_path, PULSECHECK_NOW=NOW.isoformat())
    assert "pulsecheck.workflow.portfolio" in modules  # the log is read (the command did its work)
    assert [name for name in ORM_SIDE if loaded(modules, name)] == []
    assert not loaded(modules, "pygal") and not loaded(modules, "jinja2")  # the charts are for the HTML file only


def test_the_json_says_what_the_rows_say(db_url: str, book: dict[str, int], tmp_path: Path) -> None:
    data = as_json(installed("report", "portfolio", "--json", cwd=tmp_path, env=env(db_url)))
    assert (data["accounts"], data["unscored"], data["model_version"]) == (3, 1, "t1")
    assert data["buckets"] == {"risk": 1, "fine": 1}
    # GLOBEX: lowest bucket; renewal in 37 days and 3 open issues raise P2 (high's base) twice, to P1 at most
    globex_urgency = round(30.0 + 20.0 * (1 - 37 / 180) + 15.0 * 50000 / 1e6 + 3.0 * 3, 2)
    globex = {
        "account": "GLOBEX",
        "name": "Globex",
        "segment": "smb",
        "owner": "carol",
        "score": 40.0,
        "bucket": "risk",
        "priority": "P1",
        "priority_score": globex_urgency,
        "reasons": ["bucket risk (score 40.0)", "renewal in 37 days", "3 open issues"],
        "days_to_renewal": 37,
        "open_escalations": 0,
    }
    # ACME: its open escalation's priority and stored score; the matrix's criteria still listed as reasons
    acme = {
        "account": "ACME",
        "name": "Acme",
        "segment": "enterprise",
        "owner": "bob",
        "score": 70.0,
        "bucket": "fine",
        "priority": "P1",
        "priority_score": 61.5,
        "reasons": ["escalation P1: usage fell", "renewal in 52 days", "ARR 120,000"],
        "days_to_renewal": 52,
        "open_escalations": 1,
    }
    assert data["at_risk"] == [globex, acme]  # one priority: the lower score first
    assert data["arr"] == {
        "total": 170000.0,
        "by_bucket": {"risk": 50000.0, "fine": 120000.0},
        "at_risk": 170000.0,
        "at_risk_by_bucket": {"risk": 50000.0, "fine": 120000.0},
    }
    escalations = data["open_escalations"]
    assert (escalations["count"], [e["account"] for e in escalations["items"]]) == (1, ["ACME"])
    assert escalations["items"][0]["age_days"] == 3
    assert data["open_deviations"] == {"count": 1, "by_kind": {"stale": 1}, "accepted_by_kind": {"missing": 1}}
    assert data["overdue_reviews"] == []
    # groups: the latest snapshots (ACME 80/55, GLOBEX 30/50) against October's run (GLOBEX 90/70)
    assert data["groups"]["previous_as_of"] == OCTOBER.isoformat()
    assert [(g["name"], g["mean"], g["accounts"], g["previous"], g["change"]) for g in data["groups"]["items"]] == [
        ("value", 55.0, 2, 90.0, -35.0),
        ("care", 52.5, 2, 70.0, -17.5),
    ]
    assert [(p["month"], p["accounts"], p["mean_score"]) for p in data["trend"]] == [
        ("2026-10", 1, 80.0),
        ("2026-11", 1, 70.0),
    ]
    owners = {o["owner"]: (o["accounts"], o["at_risk"], o["open_escalations"]) for o in data["owners"]}
    assert owners == {"bob": (1, 1, 1), "carol": (1, 1, 0), None: (1, 0, 0)}
    assert [card["account"]["id"] for card in data["scorecards"]["items"]] == ["GLOBEX", "ACME"]


def test_a_segment_narrows_every_figure(db_url: str, book: dict[str, int], tmp_path: Path) -> None:
    data = as_json(installed("report", "portfolio", "--segment", "smb", "--json", cwd=tmp_path, env=env(db_url)))
    assert (data["accounts"], data["unscored"], data["buckets"]) == (2, 1, {"risk": 1, "fine": 0})
    assert [item["account"] for item in data["at_risk"]] == ["GLOBEX"]
    assert data["open_escalations"]["count"] == 0
    text = ok(installed("report", "portfolio", "--segment", "smb", cwd=tmp_path, env=env(db_url)))
    assert "At risk: 1" in text and "GLOBEX" in text and "ACME" not in text
