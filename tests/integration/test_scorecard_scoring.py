"""The scorecard's inputs and snapshots against a real database: cash flows and financials imported
all-or-nothing (updated by key), a grouped model with derived and tracked KPIs scored into snapshots with
group subscores and per-KPI ratings, and the facts rules see. Expected numbers are worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pulsecheck.errors import InputError, ValidationFailed
from pulsecheck.storage.db import Database
from pulsecheck.storage.facts import compute_facts
from pulsecheck.storage.models import Account, AccountFinancials, Cashflow, ScoreSnapshot, User
from pulsecheck.workflow import finance, inputs, models, scoring
from tests.conftest import Factory

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
MODEL = """\
version: "2027.01"
groups:
  - {name: customer_value, label: "Customer success", groups: [business_value, performance_value]}
  - {name: internal_success, label: "Internal business success"}
kpis:
  - {name: npv, group: business_value, weight: 20, formula: npv, scale: {min: 0, max: 1000}}
  - {name: on_time_delivery, group: performance_value, weight: 40, scale: {min: 0, max: 100}, concern: {below: 80}}
  - {name: ltv, group: internal_success, weight: 40, formula: ltv, scale: {min: 0, max: 50000}}
  - {name: logins, weight: 0, concern: {below: 10}}
buckets:
  - {name: unhealthy, below: 40, color: orange}
  - {name: healthy, color: green}
discount_rate: 0.1
"""
CASHFLOWS = "account,period,amount\nACME,0,-1000\nACME,1,500\nACME,2,500\nACME,3,500\n"
FINANCIALS = (
    "account,arpu,cac,cost_to_serve,expected_tenure_months,discount_rate\n"
    "ACME,1000,5000,300,,\n"  # tenure from contract_start; the model's rate
    "BETA,800,4000,200,24,0\n"
)
READINGS = (
    "account,kpi,value,observed_at,source\n"
    "ACME,on_time_delivery,70,2026-11-20T06:00:00Z,pmo\n"
    "ACME,logins,5,2026-11-20T06:00:00Z,app\n"
    "BETA,on_time_delivery,90,2026-11-20T06:00:00Z,pmo\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def portfolio(factory: Any, database: Database, tmp_path: Path) -> Database:
    return fill(factory, database, tmp_path)


def fill(factory: Any, database: Database, tmp_path: Path) -> Database:
    factory.user("olga", "ops")
    factory.account("ACME", contract_start=date(2024, 11, 24))
    factory.account("BETA", contract_start=date(2025, 5, 1))
    with database.transaction() as session:
        assert finance.import_cashflows(session, write(tmp_path, "c.csv", CASHFLOWS)).created == 4
        assert finance.import_financials(session, write(tmp_path, "f.csv", FINANCIALS)).created == 2
        assert inputs.import_readings(session, write(tmp_path, "r.csv", READINGS), UTC, NOW).created == 3
        olga = session.scalars(select(User).where(User.name == "olga")).one()
        models.approve_model(session, write(tmp_path, "m.yaml", MODEL), olga, NOW)
    return database


def snapshot(database: Database, external_id: str) -> ScoreSnapshot:
    with database.transaction() as session:
        query = select(ScoreSnapshot).join(Account, Account.id == ScoreSnapshot.account_id)
        return session.scalars(query.where(Account.external_id == external_id)).one()


@pytest.mark.postgres
def test_the_same_snapshots_on_postgresql(pg_database: Database, tmp_path: Path) -> None:
    test_grouped_model_snapshots_store_subscores_ratings_and_derived_values(
        fill(Factory(pg_database, NOW), pg_database, tmp_path)
    )


def test_grouped_model_snapshots_store_subscores_ratings_and_derived_values(portfolio: Database) -> None:
    with portfolio.transaction() as session:
        run = scoring.score_portfolio(session, NOW, NOW)
    assert (run.accounts, run.scored) == (2, 2)
    acme = snapshot(portfolio, "ACME")
    parts = {c["kpi"]: c for c in acme.components}
    # npv: -1000 + 500/1.1 + 500/1.21 + 500/1.331 = 243.43 -> normalized 24.34 (of 0..1000)
    assert parts["npv"]["raw"] == pytest.approx(243.4259955)
    # ltv: contract 2024-11-24 -> 24 months; (1000 - 300) x 24 - 5000 = 11800 -> normalized 23.6 (of 0..50000)
    assert parts["ltv"]["raw"] == pytest.approx(11800)
    # score: 24.3426 x 0.2 + 70 x 0.4 + 23.6 x 0.4 = 4.8685 + 28 + 9.44 = 42.31
    assert (acme.score, acme.bucket) == (42.31, "healthy")
    # customer_value: (20 x 24.3426 + 40 x 70) / 60 = (486.85 + 2800) / 60 = 54.78
    assert acme.groups == {
        "customer_value": 54.78, "internal_success": 23.6, "business_value": 24.34, "performance_value": 70.0,
    }  # fmt: skip
    assert {k: (c["status"], c["rating"]) for k, c in parts.items()} == {
        "npv": ("ok", "concern"),  # normalized 24 < 40
        "on_time_delivery": ("ok", "concern"),  # raw 70 below the KPI's own 80
        "ltv": ("ok", "concern"),
        "logins": ("ok", "concern"),  # tracked: raw 5 below 10; weight 0, no contribution
    }
    assert (parts["logins"]["raw"], parts["logins"]["contribution"]) == (5, 0)
    beta = snapshot(portfolio, "BETA")
    beta_parts = {c["kpi"]: c for c in beta.components}
    # BETA has no cash flows: npv missing, renormalized away; logins missing but tracked: no finding
    assert (beta_parts["npv"]["status"], beta_parts["npv"]["rating"]) == ("missing", None)
    # ltv: (800 - 200) x 24 - 4000 = 10400 -> 20.8; score (90 x 40 + 20.8 x 40) / 80 = 55.4
    assert beta.score == 55.4 and beta.groups["business_value"] is None
    assert beta.provisional


def test_rules_see_every_kpi_its_status_the_concerns_and_the_groups(portfolio: Database) -> None:
    with portfolio.transaction() as session:
        scoring.score_portfolio(session, NOW, NOW)
        facts = compute_facts(session, NOW)
        acme = session.scalars(select(Account.id).where(Account.external_id == "ACME")).one()
    fact = facts[acme]
    assert fact["kpi.logins"] == 5 and fact["kpi_status.logins"] == "concern"
    assert fact["kpi_status.on_time_delivery"] == "concern"
    assert fact["concerns"] == 4
    assert fact["group.customer_value"] == 54.78 and fact["group.internal_success"] == 23.6


def test_imports_update_by_key_and_refuse_a_key_given_twice(portfolio: Database, tmp_path: Path) -> None:
    with portfolio.transaction() as session:
        again = finance.import_cashflows(
            session, write(tmp_path, "c2.csv", "account,period,amount\nACME,3,600\nACME,4,1\n")
        )
        fin = finance.import_financials(
            session, write(tmp_path, "f2.csv", "account,arpu,cac,cost_to_serve\nBETA,1,2,3\n")
        )
    assert (again.created, again.updated, fin.created, fin.updated) == (1, 1, 0, 1)
    with portfolio.transaction() as session:
        flows = {period: amount for period, amount in session.execute(select(Cashflow.period, Cashflow.amount))}
        beta = session.scalars(select(AccountFinancials).where(AccountFinancials.arpu == 1)).one()
    assert flows == {0: -1000, 1: 500, 2: 500, 3: 600, 4: 1}
    assert (beta.cac, beta.cost_to_serve, beta.expected_tenure_months) == (2, 3, None)
    twice = write(tmp_path, "c3.csv", "account,period,amount\nACME,7,1\nBETA,1,1\nACME,7,2\n")
    with pytest.raises(InputError, match=r"row 4, column 'account': account 'ACME' period 7 appears twice in the "
                       r"file \(row 2 and row 4\)"), portfolio.transaction() as session:  # fmt: skip
        finance.import_cashflows(session, twice)
    bad = write(tmp_path, "f3.csv", "account,arpu,cac,cost_to_serve,discount_rate\nACME,1,1,1,1.5\nNOPE,1,1,-1,\n")
    with pytest.raises(ValidationFailed) as info, portfolio.transaction() as session:
        finance.import_financials(session, bad)
    assert info.value.problems == [
        f"{bad}: row 2, column 'discount_rate': 1.5 is not a fraction in [0, 1] (like 0.08)",
        f"{bad}: row 3, column 'cost_to_serve': -1 is below 0",
    ]
    with portfolio.transaction() as session:  # nothing of either bad file was written
        assert session.scalars(select(Cashflow.amount).where(Cashflow.period == 7)).all() == []
        assert session.scalars(select(AccountFinancials.cac).where(AccountFinancials.cac == 1)).all() == []
