"""`scorecard ACCOUNT` (`scorecard show`), `scorecard export` and `rules show` read on SQLAlchemy Core (issue 17):
run as the installed script, they load neither the ORM nor the mapped classes, and what they print says what the
rows set up here say. The expected values are written out from the data below, not computed by pulsecheck."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import insert, select

from pulsecheck.demo import examples_dir
from pulsecheck.storage.db import Database
from pulsecheck.storage.tables import ACCOUNTS, RULESETS, SCORE_SNAPSHOTS, SCORING_MODELS
from tests.cli.test_cold_start_imports import imported, loaded
from tests.conftest import NOW, TWO_GROUP_MODEL, Factory, as_json, error, installed, ok

# What a read command on Core must not load: the ORM and what only the ORM path uses.
ORM_SIDE = ("sqlalchemy.orm", "pulsecheck.storage.models", "pulsecheck.storage.more_models",
            "pulsecheck.storage.chain", "pulsecheck.storage.bulk")
BEFORE, LATEST = NOW - timedelta(days=40), NOW - timedelta(days=1)
RULES = examples_dir() / "rules.yaml"


def component(kpi: str, raw: float, normalized: float, weight: float, rating: str | None) -> dict[str, Any]:
    """A stored KPI component as scoring writes it; its contribution is weight/100 * normalized."""
    return {"kpi": kpi, "raw": raw, "normalized": normalized, "weight": weight, "effective_weight": weight,
            "contribution": weight / 100 * normalized, "status": "ok", "rating": rating}


@pytest.fixture
def card(factory: Factory, database: Database, os_login_admin: str) -> None:
    """ACME (bob's, enterprise, ARR 120000, renewal 2027-01-15) scored twice with the two-group model: 46 (risk)
    40 days ago, 67 (fine, tickets a concern, usage a strength) yesterday; an old active-then-retired ruleset and
    the example rules.yaml active, activated by olga."""
    factory.team()
    with database.engine.begin() as conn:
        model = conn.scalar(insert(SCORING_MODELS).values(version="t1", content=TWO_GROUP_MODEL, sha256="0" * 64,
                                                          status="approved").returning(SCORING_MODELS.c.id))
        acme = conn.scalar(select(ACCOUNTS.c.id).where(ACCOUNTS.c.external_id == "ACME"))
        conn.execute(insert(SCORE_SNAPSHOTS), [
            {"account_id": acme, "as_of": BEFORE, "score": 46.0, "bucket": "risk", "model_id": model,
             "provisional": False, "groups": {"value": 50.0, "care": 40.0},
             "components": [component("usage", 50.0, 50.0, 60.0, None), component("tickets", 12.0, 40.0, 40.0,
                                                                                  "concern")]},
            {"account_id": acme, "as_of": LATEST, "score": 67.0, "bucket": "fine", "model_id": model,
             "provisional": False, "groups": {"value": 85.0, "care": 40.0},
             "components": [component("usage", 85.0, 85.0, 60.0, "strength"),
                            component("tickets", 12.0, 40.0, 40.0, "concern")]},
        ])
        conn.execute(insert(RULESETS), [
            {"name": "old.yaml", "sha256": "1" * 64, "content": "rules: []\n", "activated_by": "maria",
             "activated_at": BEFORE, "active": False},
            {"name": "rules.yaml", "sha256": hashlib.sha256(RULES.read_bytes()).hexdigest(),
             "content": RULES.read_text(encoding="utf-8"), "activated_by": "olga", "activated_at": LATEST,
             "active": True},
        ])


def env(db_url: str) -> dict[str, str]:
    return {"PULSECHECK_DATABASE_URL": db_url, "PULSECHECK_NOW": NOW.isoformat()}


@pytest.mark.parametrize("args", [("scorecard", "ACME"), ("scorecard", "show", "ACME", "--json"),
                                  ("scorecard", "export", "ACME"), ("scorecard", "export", "ACME", "--format", "html"),
                                  ("rules", "show"), ("rules", "show", "--json")])
def test_the_reads_load_no_orm(db_url: str, card: None, args: tuple[str, ...]) -> None:
    modules = imported(db_url, *args, PULSECHECK_NOW=NOW.isoformat())
    assert "pulsecheck.storage.tables" in modules  # the rows are read (the command did its work)
    assert [name for name in ORM_SIDE if loaded(modules, name)] == []


def test_the_scorecard_says_what_the_snapshots_say(db_url: str, tmp_path: Path, card: None) -> None:
    usage = {"kpi": "usage", "group": "value", "raw": 85.0, "normalized": 85.0, "weight": 60.0, "contribution": 51.0,
             "status": "ok", "rating": "strength", "color": "green"}
    tickets = {"kpi": "tickets", "group": "care", "raw": 12.0, "normalized": 40.0, "weight": 40.0,
               "contribution": 16.0, "status": "ok", "rating": "concern", "color": "orange"}
    expected = {
        "account": {"id": "ACME", "name": "Acme", "segment": "enterprise", "arr": 120000.0,
                    "renewal_date": "2027-01-15", "owner": "bob"},
        "as_of": LATEST.isoformat(), "model_version": "t1", "score": 67.0, "bucket": "fine", "bucket_color": "green",
        "provisional": False,
        "groups": [{"name": "value", "label": "Value", "depth": 0, "weight": 60, "subscore": 85.0},
                   {"name": "care", "label": "Care", "depth": 0, "weight": 40, "subscore": 40.0}],
        "kpis": [usage, tickets], "concerns": ["tickets"], "strengths": ["usage"],
        # 67 yesterday against 46, the latest score 30 days before it
        "success_vector": {"direction": "positive", "change": 21.0, "window_days": 30},
        "history": [{"as_of": BEFORE.isoformat(), "score": 46.0, "bucket": "risk",
                     "groups": {"value": 50.0, "care": 40.0}},
                    {"as_of": LATEST.isoformat(), "score": 67.0, "bucket": "fine",
                     "groups": {"value": 85.0, "care": 40.0}}],
    }
    shown = as_json(installed("scorecard", "show", "ACME", "--json", cwd=tmp_path, env=env(db_url)))
    assert shown == expected
    short = as_json(installed("scorecard", "ACME", "--history", "1", "--json", cwd=tmp_path, env=env(db_url)))
    assert short == expected | {"history": expected["history"][1:]}
    day = (BEFORE + timedelta(days=1)).date().isoformat()
    older = as_json(installed("scorecard", "ACME", "--as-of", day, "--json", cwd=tmp_path, env=env(db_url)))
    assert (older["score"], older["bucket"], older["concerns"], older["strengths"]) == (46.0, "risk", ["tickets"], [])
    text = ok(installed("scorecard", "ACME", cwd=tmp_path, env=env(db_url)))
    assert "areas of concern: tickets\n" in text and "strengths: usage\n" in text
    assert error(installed("scorecard", "NOPE", cwd=tmp_path, env=env(db_url)), 2) == "error: unknown account 'NOPE'"
    markdown = ok(installed("scorecard", "export", "ACME", cwd=tmp_path, env=env(db_url)))
    assert markdown.startswith("# Scorecard: ACME Acme\n")
    assert "- Score: 67.00 (fine)" in markdown


def test_rules_show_gives_the_active_ruleset(db_url: str, tmp_path: Path, card: None) -> None:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    rules = [{"id": r["id"], "description": r.get("description"), "actions": list(r["then"])}
             for r in document["rules"]]
    shown = as_json(installed("rules", "show", "--json", cwd=tmp_path, env=env(db_url)))
    assert shown == {"name": "rules.yaml", "sha256": hashlib.sha256(RULES.read_bytes()).hexdigest(),
                     "activated_by": "olga", "activated_at": LATEST.isoformat(), "rules": rules}
    text = ok(installed("rules", "show", cwd=tmp_path, env=env(db_url)))
    assert text.startswith(f"rules.yaml (sha256 {shown['sha256'][:12]}), activated by olga at {LATEST.isoformat()}\n")
