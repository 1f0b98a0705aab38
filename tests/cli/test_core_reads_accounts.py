"""`users list`, `accounts list` and `accounts show` read on SQLAlchemy Core (issue 17): run as the installed script,
they load neither the ORM nor the mapped classes, and their `--json` says what the rows set up here say, filters,
sorts and pages honoured. The expected values are written out from the data below, not computed by pulsecheck."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from pulsecheck.storage.db import Database
from pulsecheck.storage.tables import ACCOUNTS, SCORE_SNAPSHOTS, SCORING_MODELS
from tests.cli.test_cold_start_imports import imported, loaded
from tests.conftest import NOW, Factory, as_json, error, installed, ok, page_items

# What a read command on Core must not load: the ORM and what only the ORM path uses.
ORM_SIDE = ("sqlalchemy.orm", "pulsecheck.storage.models", "pulsecheck.storage.more_models",
            "pulsecheck.storage.chain", "pulsecheck.storage.bulk")
BEFORE, LATEST = NOW - timedelta(days=40), NOW - timedelta(days=1)


def component(kpi: str, contribution: float) -> dict[str, Any]:
    """A stored KPI component as scoring writes it (only the contribution matters to `accounts show`)."""
    return {"kpi": kpi, "raw": 1.0, "normalized": 50.0, "weight": 50.0, "effective_weight": 50.0,
            "contribution": contribution, "status": "ok", "rating": "neutral"}


@pytest.fixture
def book(factory: Factory, database: Database, os_login_admin: str) -> dict[str, int]:
    """The team (maria manages bob and carol, carol manages erin) and three accounts: ACME (bob's, enterprise,
    scored 40 then 70), GLOBEX (carol's, smb, gold, scored 80 then 35: its latest is the lower one) and INITECH
    (smb, nobody's, never scored). The accounts' internal ids by external id."""
    factory.team()  # maria (manager), bob (reviewer under maria), olga (ops); ACME: bob's, managed by maria
    factory.user("carol", "reviewer", "manager", manager="maria", email="carol@example.com")
    factory.user("erin", "reviewer", manager="carol")
    factory.account("GLOBEX", owner="carol", manager="maria", segment="smb", tier="gold", arr=50000.0,
                    renewal_date=date(2026, 12, 31), contract_start=date(2024, 1, 1), stage="active")
    factory.account("INITECH", segment="smb")
    with database.engine.begin() as conn:
        model = conn.scalar(insert(SCORING_MODELS).values(version="t1", content="version: t1", sha256="0" * 64,
                                                          status="approved").returning(SCORING_MODELS.c.id))
        ids: dict[str, int] = dict(conn.execute(select(ACCOUNTS.c.external_id, ACCOUNTS.c.id)).all())

        def snapshot(account: str, when: Any, score: float, bucket: str, parts: list[dict[str, Any]],
                     provisional: bool = False) -> dict[str, Any]:
            return {"account_id": ids[account], "as_of": when, "score": score, "bucket": bucket, "model_id": model,
                    "components": parts, "provisional": provisional}

        conn.execute(insert(SCORE_SNAPSHOTS), [
            snapshot("ACME", BEFORE, 40.0, "unhealthy",
                     [component("usage", 30.0), component("nps", 10.0), component("csat", 5.0)]),
            snapshot("ACME", LATEST, 70.0, "neutral",
                     [component("usage", 52.5), component("nps", 17.5), component("csat", 5.0)], provisional=True),
            snapshot("GLOBEX", NOW - timedelta(days=10), 80.0, "healthy", [component("usage", 80.0)]),
            snapshot("GLOBEX", NOW - timedelta(days=2), 35.0, "unhealthy", [component("usage", 35.0)]),
        ])
    return ids


def cli(db_url: str, tmp_path: Path, *args: str) -> Any:
    """The installed script's parsed `--json` output for ARGS, at the tests' fixed clock."""
    return as_json(installed(*args, "--json", cwd=tmp_path,
                             env={"PULSECHECK_DATABASE_URL": db_url, "PULSECHECK_NOW": NOW.isoformat()}))


def items(db_url: str, tmp_path: Path, *args: str) -> list[Any]:
    """The rows of a list's `--json` page."""
    return page_items(installed(*args, "--json", cwd=tmp_path,
                                env={"PULSECHECK_DATABASE_URL": db_url, "PULSECHECK_NOW": NOW.isoformat()}))


@pytest.mark.parametrize("args", [("users", "list", "--json"), ("users", "list", "--role", "manager"),
                                  ("accounts", "list", "--json", "--sort", "score"), ("accounts", "list"),
                                  ("accounts", "show", "ACME", "--json"), ("accounts", "show", "ACME")])
def test_the_reads_load_no_orm(db_url: str, book: dict[str, int], args: tuple[str, ...]) -> None:
    modules = imported(db_url, *args, PULSECHECK_NOW=NOW.isoformat())
    assert "pulsecheck.storage.tables" in modules  # the log is read (the command did its work)
    assert [name for name in ORM_SIDE if loaded(modules, name)] == []


def test_users_list_says_who_holds_what_and_reports_to_whom(
    db_url: str, tmp_path: Path, book: dict[str, int], os_login_admin: str
) -> None:
    def user(name: str, roles: list[str], email: str | None = None, manager: str | None = None) -> dict[str, Any]:
        return {"name": name, "roles": roles, "email": email, "manager": manager, "webhook": None}

    everyone = sorted([
        user(os_login_admin, ["admin"]),
        user("maria", ["manager"], "maria@example.com"),
        user("bob", ["reviewer"], "bob@example.com", "maria"),
        user("olga", ["ops"]),
        user("carol", ["manager", "reviewer"], "carol@example.com", "maria"),
        user("erin", ["reviewer"], None, "carol"),
    ], key=lambda u: u["name"])
    page = cli(db_url, tmp_path, "users", "list")
    assert page == {"total": 6, "offset": 0, "limit": None, "items": everyone}

    def names(*args: str) -> list[str]:
        return [u["name"] for u in items(db_url, tmp_path, "users", "list", *args)]

    assert names("--role", "manager") == ["carol", "maria"]
    assert names("--role", "reviewer") == ["bob", "carol", "erin"]
    assert names("--manager", "maria") == ["bob", "carol"]
    assert names("--as", "carol", "--mine") == ["erin"]
    assert names("--role", "reviewer", "--manager", "maria") == ["bob", "carol"]
    paged = cli(db_url, tmp_path, "users", "list", "--limit", "2", "--offset", "1")
    assert paged == {"total": 6, "offset": 1, "limit": 2, "items": everyone[1:3]}


def test_accounts_list_shows_each_account_with_its_latest_score(
    db_url: str, tmp_path: Path, book: dict[str, int]
) -> None:
    acme = {"id": "ACME", "name": "Acme", "segment": "enterprise", "tier": None, "arr": 120000.0, "owner": "bob",
            "manager": "maria", "renewal_date": "2027-01-15", "contract_start": None, "stage": None, "score": 70.0,
            "bucket": "neutral"}
    globex = {"id": "GLOBEX", "name": "Globex", "segment": "smb", "tier": "gold", "arr": 50000.0, "owner": "carol",
              "manager": "maria", "renewal_date": "2026-12-31", "contract_start": "2024-01-01", "stage": "active",
              "score": 35.0, "bucket": "unhealthy"}  # its newest snapshot, not its best one
    initech = {"id": "INITECH", "name": "Initech", "segment": "smb", "tier": None, "arr": None, "owner": None,
               "manager": None, "renewal_date": None, "contract_start": None, "stage": None, "score": None,
               "bucket": None}
    assert cli(db_url, tmp_path, "accounts", "list") == {"total": 3, "offset": 0, "limit": None,
                                                         "items": [acme, globex, initech]}

    def ids(*args: str) -> list[str]:
        return [a["id"] for a in items(db_url, tmp_path, "accounts", "list", *args)]

    assert ids("--bucket", "unhealthy") == ["GLOBEX"]
    assert ids("--bucket", "healthy") == []  # GLOBEX was healthy, before its latest snapshot
    assert ids("--segment", "smb") == ["GLOBEX", "INITECH"]
    assert ids("--tier", "gold") == ["GLOBEX"]
    assert ids("--renewal-before", "2027-01-01") == ["GLOBEX"]
    assert ids("--owner", "bob") == ["ACME"]
    assert ids("--as", "carol", "--mine") == ["GLOBEX"]
    assert ids("--sort", "score") == ["GLOBEX", "ACME", "INITECH"]  # lowest first, unscored last
    assert ids("--sort", "arr") == ["ACME", "GLOBEX", "INITECH"]  # largest first, none last
    assert ids("--sort", "renewal") == ["GLOBEX", "ACME", "INITECH"]
    assert ids("--segment", "smb", "--bucket", "unhealthy", "--sort", "name") == ["GLOBEX"]
    paged = cli(db_url, tmp_path, "accounts", "list", "--sort", "score", "--limit", "1", "--offset", "1")
    assert paged == {"total": 3, "offset": 1, "limit": 1, "items": [acme]}
    counted = cli(db_url, tmp_path, "accounts", "list", "--segment", "smb", "--bucket", "unhealthy", "--limit", "1")
    assert counted["total"] == 1


def test_accounts_show_gives_the_account_and_why_its_score_moved(
    db_url: str, tmp_path: Path, book: dict[str, int]
) -> None:
    before = {"as_of": BEFORE.isoformat(), "score": 40.0, "bucket": "unhealthy", "provisional": False}
    latest = {"as_of": LATEST.isoformat(), "score": 70.0, "bucket": "neutral", "provisional": True}
    account = {"id": "ACME", "name": "Acme", "segment": "enterprise", "tier": None, "arr": 120000.0, "owner": "bob",
               "manager": "maria", "renewal_date": "2027-01-15", "contract_start": None, "stage": None}
    trend = {
        "history": [before, latest],
        "sparkline": "▄▆",  # 40 and 70 on 0..100 in eight bars: bars 3 and 5 (from 0)
        "change_30d": 30.0,  # 70 now against 40, the latest score 30 days ago
        "direction": "up",
        "contribution_changes": [["nps", 7.5], ["usage", 22.5]],  # csat did not move: left out
        "previous": {"as_of": BEFORE.isoformat(), "score": 40.0, "change": 30.0},
    }
    assert cli(db_url, tmp_path, "accounts", "show", "ACME") == account | {"trend": trend}
    # --history cuts the rows shown, not what the change is measured against
    one = cli(db_url, tmp_path, "accounts", "show", "ACME", "--history", "1")
    assert one == account | {"trend": trend | {"history": [latest], "sparkline": "▆"}}
    by_id = cli(db_url, tmp_path, "accounts", "show", str(book["GLOBEX"]))
    # no score 30 days ago: no 30-day change
    assert (by_id["id"], by_id["owner"], by_id["trend"]["direction"]) == ("GLOBEX", "carol", "flat")
    assert by_id["trend"]["previous"] == {"as_of": (NOW - timedelta(days=10)).isoformat(), "score": 80.0,
                                          "change": -45.0}
    never = cli(db_url, tmp_path, "accounts", "show", "INITECH")
    assert never["trend"] == {"history": [], "sparkline": "", "change_30d": None, "direction": "flat",
                              "contribution_changes": [], "previous": None}
    env = {"PULSECHECK_DATABASE_URL": db_url, "PULSECHECK_NOW": NOW.isoformat()}
    assert error(installed("accounts", "show", "NOPE", cwd=tmp_path, env=env), 2) == "error: unknown account 'NOPE'"
    text = ok(installed("accounts", "show", "ACME", cwd=tmp_path, env=env))
    assert "          owner: bob\n" in text and "\nsince the previous snapshot:\n" in text
