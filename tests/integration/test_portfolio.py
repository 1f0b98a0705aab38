"""The portfolio report's figures against a real SQLite database seeded through the services: at-risk accounts
and their priority, bucket counts equal to the database's, segment filter, overdue reviews, escalations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pulsecheck.errors import InputError
from pulsecheck.rules.priority import PriorityMatrix
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, ScoreSnapshot, User
from pulsecheck.workflow import escalations as escalation
from pulsecheck.workflow import inputs, models, portfolio, reviews, scoring
from tests.conftest import Templates

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
MONTH_AGO = datetime(2026, 10, 24, 9, 0, tzinfo=UTC)
EXAMPLE_MODEL = Path(__file__).resolve().parents[2] / "examples" / "scoring.yaml"

# Each account: (segment, owner, arr, renewal, [usage, open_tickets, on_time_delivery] a month ago, then now).
# Without surveys the score renormalizes over usage (30), tickets (15), delivery (15): (2u + (20 - t) * 5 + d) / 4.
ACCOUNTS: dict[str, tuple[str, str | None, float, date | None, tuple[int, int, int], tuple[int, int, int]]] = {
    "ACME": ("enterprise", "bob", 250_000.0, date(2027, 1, 10), (90, 2, 90), (20, 16, 20)),  # 20: unhealthy
    "BOLT": ("enterprise", "bob", 50_000.0, date(2027, 6, 1), (70, 6, 70), (30, 18, 30)),  # 25: unhealthy
    "CORE": ("enterprise", None, 80_000.0, None, (90, 0, 90), (90, 2, 90)),  # 90: healthy, escalated below
    "DUNE": ("smb", "carl", 10_000.0, date(2027, 3, 1), (60, 8, 60), (60, 8, 60)),  # 60: neutral
    "ECHO": ("smb", "carl", 5_000.0, None, (20, 18, 20), (95, 1, 95)),  # 95: healthy, was unhealthy
}


def seed(database: Database, tmp_path: Path) -> dict[str, int]:
    """Users, five accounts, the example model approved, two monthly scorings; returns external id → id."""
    lines = ["account,kpi,value,observed_at,source"]
    for ext, (*_, before, after) in ACCOUNTS.items():
        for when, values in ((MONTH_AGO, before), (NOW, after)):
            for kpi, value in zip(("usage", "open_tickets", "on_time_delivery"), values, strict=True):
                lines.append(f"{ext},{kpi},{value},{(when - timedelta(days=1)).isoformat()},test")
    readings = tmp_path / "readings.csv"
    readings.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with database.transaction() as session:
        from pulsecheck.workflow.users import add_user

        add_user(session, "maria", ["manager"], NOW)
        add_user(session, "bob", ["reviewer"], NOW, manager="maria")
        add_user(session, "carl", ["reviewer"], NOW, manager="maria")
        add_user(session, "olga", ["ops"], NOW)
        users = {u.name: u for u in session.scalars(select(User))}
        for ext, (segment, owner, arr, renewal, *_) in ACCOUNTS.items():
            session.add(
                Account(
                    external_id=ext,
                    name=ext.title(),
                    segment=segment,
                    arr=arr,
                    renewal_date=renewal,
                    owner=users.get(owner or ""),
                    manager=users["maria"],
                )
            )
        session.flush()
        models.approve_model(session, EXAMPLE_MODEL, users["olga"], MONTH_AGO)
        inputs.import_readings(session, readings, UTC, MONTH_AGO)
        scoring.score_portfolio(session, MONTH_AGO, MONTH_AGO)
        scoring.score_portfolio(session, NOW, NOW)
        return {a.external_id: a.id for a in session.scalars(select(Account))}


@pytest.fixture
def ids(database: Database, templates: Templates) -> dict[str, int]:
    """The test database holding `seed`'s portfolio (built once per session); external id → id."""
    templates.load(database, templates.seeded("five_accounts", lambda fresh: seed(fresh, templates.root)))
    with database.transaction() as session:
        return {a.external_id: a.id for a in session.scalars(select(Account))}


def escalate(database: Database, account: int, rule: str, priority: str, when: datetime) -> int:
    with database.transaction() as session:
        return escalation.create(session, account, rule, "high", priority, f"{rule} fired", "bob", None, when).id


def database_buckets(database: Database, as_of: datetime, segment: str | None = None) -> dict[str, int]:
    """Bucket counts computed the slow, obvious way: each account's newest snapshot, one by one."""
    counts = dict.fromkeys(("unhealthy", "neutral", "healthy"), 0)  # the example model's buckets
    with database.transaction() as session:
        for account in session.scalars(select(Account)):
            if segment is not None and account.segment != segment:
                continue
            snapshot = session.scalars(
                select(ScoreSnapshot)
                .where(ScoreSnapshot.account_id == account.id, ScoreSnapshot.as_of <= as_of)
                .order_by(ScoreSnapshot.as_of.desc())
                .limit(1)
            ).first()
            if snapshot is not None and snapshot.bucket is not None:
                counts[snapshot.bucket] = counts.get(snapshot.bucket, 0) + 1
    return counts


def risky(database: Database, as_of: datetime = NOW, **kwargs: Any) -> list[portfolio.AtRisk]:
    with database.transaction() as session:
        return portfolio.at_risk(session, as_of, PriorityMatrix(), **kwargs)


def test_at_risk_is_the_lowest_bucket_plus_open_escalations_sorted_by_priority_then_score(
    database: Database, ids: dict[str, int]
) -> None:
    escalate(database, ids["CORE"], "manual", "P1", NOW - timedelta(days=3))
    found = risky(database)
    # Both P1: the lower score first.
    assert [a.external_id for a in found] == ["ACME", "CORE", "BOLT"]
    acme, core, bolt = found
    assert core.priority == "P1" and core.open_escalations == 1 and core.bucket == "healthy"
    assert core.owner is None and any("escalation P1" in r for r in core.reasons)
    # ACME: high → P2, raised by renewal in 47 days and ARR 250k → P1; BOLT: only ARR < 100k, no renewal soon → P2.
    assert (acme.priority, acme.score, acme.bucket, acme.owner, acme.days_to_renewal) == (
        "P1",
        20.0,
        "unhealthy",
        "bob",
        47,
    )
    assert "renewal in 47 days" in acme.reasons and "ARR 250,000" in acme.reasons
    assert (bolt.priority, bolt.segment, bolt.open_escalations) == ("P2", "enterprise", 0)


def test_at_risk_follows_as_of_and_scope(database: Database, ids: dict[str, int]) -> None:
    # A month ago only ECHO was unhealthy; an escalation opened since then does not count yet.
    escalate(database, ids["DUNE"], "manual", "P3", NOW - timedelta(days=1))
    assert [a.external_id for a in risky(database, MONTH_AGO)] == ["ECHO"]
    assert [a.external_id for a in risky(database, account_ids=[ids["BOLT"], ids["DUNE"]])] == ["BOLT", "DUNE"]
    assert [a.external_id for a in risky(database, segment="smb")] == ["DUNE"]


def test_resolved_and_acknowledged_escalations(database: Database, ids: dict[str, int]) -> None:
    first = escalate(database, ids["DUNE"], "a", "P4", NOW - timedelta(days=5))
    second = escalate(database, ids["DUNE"], "b", "P3", NOW - timedelta(days=5))
    with database.transaction() as session:
        maria = session.scalars(select(User).where(User.name == "maria")).one()
        escalation.acknowledge(session, first, maria, NOW - timedelta(days=4))
        escalation.resolve(session, second, maria, NOW - timedelta(days=2))
    (dune,) = [a for a in risky(database) if a.external_id == "DUNE"]
    assert (dune.priority, dune.open_escalations) == ("P4", 1)  # the acknowledged one; the resolved one is gone
    (dune,) = [a for a in risky(database, NOW - timedelta(days=3)) if a.external_id == "DUNE"]
    assert (dune.priority, dune.open_escalations) == ("P3", 2)  # three days ago both were open


def test_bucket_counts_equal_the_database(database: Database, ids: dict[str, int]) -> None:
    with database.transaction() as session:
        latest = portfolio.latest_snapshots(session, NOW)
    counted: dict[str, int] = {}
    for _, bucket in latest.values():
        counted[str(bucket)] = counted.get(str(bucket), 0) + 1
    assert counted == database_buckets(database, NOW) == {"unhealthy": 2, "neutral": 1, "healthy": 2}


def review_due(database: Database, account: str, opened: datetime, due_in: timedelta) -> int:
    with database.transaction() as session:
        return reviews.new_review(session, account, "bob", opened, due_in).id


def report(database: Database, as_of: datetime = NOW, segment: str | None = None) -> portfolio.Portfolio:
    with database.transaction() as session:
        return portfolio.build_portfolio(session, as_of, PriorityMatrix(), segment)


def test_portfolio_figures_equal_the_database(database: Database, ids: dict[str, int]) -> None:
    data = report(database)
    assert data.model_version == "2026.11"
    assert data.as_dict()["buckets"] == database_buckets(database, NOW) == {"unhealthy": 2, "neutral": 1, "healthy": 2}
    assert [(b.name, b.color) for b in data.buckets] == [
        ("unhealthy", "orange"),
        ("neutral", "yellow"),
        ("healthy", "blue"),
    ]
    assert (data.accounts, data.unscored) == (5, 0)
    # Scores 20, 25, 90, 60, 95: bins 20-30 (2), 60-70 (1), 90-100 (2).
    assert {lo: n for lo, _, n in data.histogram if n} == {20: 2, 60: 1, 90: 2}
    october, november = data.trend
    assert (october.month, october.accounts, october.buckets) == (
        "2026-10",
        5,
        {"healthy": 2, "neutral": 2, "unhealthy": 1},
    )
    assert (november.month, november.buckets) == ("2026-11", {"unhealthy": 2, "neutral": 1, "healthy": 2})
    assert november.mean_score == (20 + 25 + 90 + 60 + 95) / 5
    # Without surveys every account misses nps and csat: open `missing` deviations, one per account and KPI.
    assert data.deviations["open"] == {"missing": 10}


def test_as_of_in_the_past_sees_the_portfolio_of_then(database: Database, ids: dict[str, int]) -> None:
    data = report(database, MONTH_AGO + timedelta(days=1))
    assert (
        data.as_dict()["buckets"]
        == database_buckets(database, MONTH_AGO)
        == {"healthy": 2, "neutral": 2, "unhealthy": 1}
    )
    assert [p.month for p in data.trend] == ["2026-10"]
    assert [a.external_id for a in data.at_risk] == ["ECHO"]
    empty = report(database, MONTH_AGO - timedelta(days=1))
    assert (empty.as_dict()["buckets"], empty.unscored, empty.trend) == (
        {"unhealthy": 0, "neutral": 0, "healthy": 0},
        5,
        [],
    )


def test_segment_filter(database: Database, ids: dict[str, int]) -> None:
    escalate(database, ids["CORE"], "manual", "P2", NOW - timedelta(days=1))
    escalate(database, ids["DUNE"], "manual", "P3", NOW - timedelta(days=1))
    smb = report(database, segment="smb")
    assert smb.accounts == 2
    assert (
        smb.as_dict()["buckets"]
        == database_buckets(database, NOW, "smb")
        == {"unhealthy": 0, "neutral": 1, "healthy": 1}
    )
    assert [a.external_id for a in smb.at_risk] == ["DUNE"]
    assert [e["account"] for e in smb.escalations] == ["DUNE"]
    assert smb.deviations["open"] == {"missing": 4}
    assert [p.accounts for p in smb.trend] == [2, 2]
    enterprise = report(database, segment="enterprise")
    assert enterprise.as_dict()["buckets"] == {"unhealthy": 2, "neutral": 0, "healthy": 1}
    with pytest.raises(InputError, match="--segment nowhere: unknown segment .known: enterprise, smb"):
        report(database, segment="nowhere")


def test_overdue_reviews(database: Database, ids: dict[str, int]) -> None:
    late = review_due(database, "ACME", NOW - timedelta(days=20), timedelta(days=14))  # due 6 days ago
    review_due(database, "DUNE", NOW - timedelta(days=2), timedelta(days=14))  # due in 12 days
    done = review_due(database, "BOLT", NOW - timedelta(days=30), timedelta(days=7))
    with database.transaction() as session:
        maria = session.scalars(select(User).where(User.name == "maria")).one()
        reviews.transition(session, done, "withdraw", maria, NOW - timedelta(days=25), comment="merged")
    (overdue,) = report(database).overdue_reviews
    assert (overdue["id"], overdue["account"], overdue["state"], overdue["days_overdue"]) == (late, "ACME", "draft", 6)
    assert report(database, NOW - timedelta(days=7)).overdue_reviews == []  # not yet due then
    assert report(database, segment="smb").overdue_reviews == []


def test_open_escalations_by_priority_and_age(database: Database, ids: dict[str, int]) -> None:
    escalate(database, ids["ACME"], "a", "P1", NOW - timedelta(days=2))
    escalate(database, ids["BOLT"], "a", "P2", NOW - timedelta(days=40))
    escalate(database, ids["CORE"], "a", "P2", NOW - timedelta(days=10))
    gone = escalate(database, ids["DUNE"], "a", "P1", NOW - timedelta(days=5))
    with database.transaction() as session:
        maria = session.scalars(select(User).where(User.name == "maria")).one()
        escalation.resolve(session, gone, maria, NOW - timedelta(days=1))
    data = report(database)
    assert [(e["account"], e["priority"], e["age_days"]) for e in data.escalations] == [
        ("ACME", "P1", 2),
        ("BOLT", "P2", 40),  # oldest first within a priority
        ("CORE", "P2", 10),
    ]
    assert data.escalations_by_priority() == {
        "P1": {"count": 1, "0-7d": 1, "8-30d": 0, "31-90d": 0, ">90d": 0},
        "P2": {"count": 2, "0-7d": 0, "8-30d": 1, "31-90d": 1, ">90d": 0},
    }
    then = report(database, NOW - timedelta(days=3))  # DUNE's was open then; ACME's not yet
    assert [(e["account"], e["status"]) for e in then.escalations] == [
        ("DUNE", "open"),
        ("BOLT", "open"),
        ("CORE", "open"),
    ]


@pytest.mark.postgres
def test_the_same_figures_on_postgresql(pg_database: Database, tmp_path: Path) -> None:
    ids = seed(pg_database, tmp_path)
    escalate(pg_database, ids["CORE"], "manual", "P1", NOW - timedelta(days=3))
    review_due(pg_database, "ACME", NOW - timedelta(days=20), timedelta(days=14))
    data = report(pg_database)
    assert (
        data.as_dict()["buckets"] == database_buckets(pg_database, NOW) == {"unhealthy": 2, "neutral": 1, "healthy": 2}
    )
    assert [a.external_id for a in data.at_risk] == ["ACME", "CORE", "BOLT"]
    assert [(p.month, p.accounts) for p in data.trend] == [("2026-10", 5), ("2026-11", 5)]
    assert [r["account"] for r in data.overdue_reviews] == ["ACME"]
    assert data.escalations_by_priority()["P1"]["count"] == 1
    assert data.deviations["open"] == {"missing": 10}
    smb = report(pg_database, segment="smb")
    assert smb.as_dict()["buckets"] == database_buckets(pg_database, NOW, "smb")


# --- ARR, owners, KPI groups and the at-risk scorecards -----------------------------------------------------------


def test_arr_and_owners_by_hand(database: Database, ids: dict[str, int]) -> None:
    escalate(database, ids["CORE"], "manual", "P1", NOW - timedelta(days=3))
    data = report(database)  # at risk: ACME 250k and BOLT 50k (unhealthy), CORE 80k (escalated)
    assert (data.arr.total, data.arr.at_risk) == (395_000, 380_000)
    assert data.as_dict()["arr"]["by_bucket"] == {"unhealthy": 300_000, "neutral": 10_000, "healthy": 85_000}
    assert data.arr_at_risk_by_bucket() == {"unhealthy": 300_000, "neutral": 0, "healthy": 80_000}
    assert [(o.owner, o.accounts, o.arr, o.mean_score, o.at_risk, o.arr_at_risk, o.open_escalations)
            for o in data.owners] == [
        ("bob", 2, 300_000, 22.5, 2, 300_000, 0),  # ACME 20, BOLT 25
        (None, 1, 80_000, 90.0, 1, 80_000, 1),  # CORE
        ("carl", 2, 15_000, 77.5, 0, 0, 0),  # DUNE 60, ECHO 95
    ]
    assert (data.groups, data.groups_previous_as_of) == ([], None)  # the example model is flat
    assert data.scorecards == [] and data.as_dict()["kpi_heat"]["rows"] == []  # not asked for
    smb = report(database, segment="smb")
    assert [(o.owner, o.accounts, o.arr) for o in smb.owners] == [("carl", 2, 15_000)]
    assert (smb.arr.total, smb.arr.at_risk) == (15_000, 0)


def test_scorecards_are_bounded_and_in_at_risk_order(database: Database, ids: dict[str, int]) -> None:
    with database.transaction() as session:
        data = portfolio.build_portfolio(session, NOW, PriorityMatrix(), scorecards=1)
    assert [a.external_id for a in data.at_risk] == ["ACME", "BOLT"]
    assert [c["account"]["id"] for c in data.scorecards] == ["ACME"]  # the limit: the most urgent one only
    (row,) = data.heat_rows()
    assert (row["account"], row["score"]) == ("ACME", 20.0)
    # ACME now: usage 20, open_tickets 16, on_time_delivery 20: normalized 20, (20 - 16) * 5 = 20, 20: all below 40.
    assert {k: c["rating"] for k, c in row["cells"].items() if c["rating"]} == {
        "usage": "concern", "open_tickets": "concern", "on_time_delivery": "concern"
    }
    # The sample model's KPIs in its order; `logins` is tracked (weight 0): shown, never rated.
    assert data.heat_kpis() == ["usage", "nps", "csat", "open_tickets", "on_time_delivery", "logins"]
    assert row["cells"]["logins"]["rating"] in (None, "neutral")


GROUPED_MODEL = """\
version: "g1"
groups:
  - {name: all, label: "All", groups: [value, care]}
  - {name: value, label: "Value"}
  - {name: care, label: "Care"}
kpis:
  - {name: usage, group: value, weight: 60, scale: {min: 0, max: 100}}
  - {name: tickets, group: care, weight: 40, scale: {min: 20, max: 0}}
buckets:
  - {name: risk, below: 40}
  - {name: fine}
"""
# (usage, tickets) a month ago, then now; value = usage, care = (20 - tickets) * 5, all = 0.6 value + 0.4 care.
GROUPED_READINGS = {"G1": ((60, 5), (20, 15)), "G2": ((80, 0), (90, 0)), "G3": ((30, 20), (30, 20))}


def seed_grouped(database: Database, tmp_path: Path) -> None:
    (tmp_path / "g.yaml").write_text(GROUPED_MODEL, encoding="utf-8")
    lines = ["account,kpi,value,observed_at,source"]
    for ext, runs in GROUPED_READINGS.items():
        for when, (usage, tickets) in zip((MONTH_AGO, NOW), runs, strict=True):
            day = (when - timedelta(days=1)).isoformat()
            lines += [f"{ext},usage,{usage},{day},t", f"{ext},tickets,{tickets},{day},t"]
    (tmp_path / "g.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with database.transaction() as session:
        from pulsecheck.workflow.users import add_user

        olga = add_user(session, "olga", ["ops"], NOW)
        session.add_all([Account(external_id=ext, name=ext, segment="s", arr=1000.0) for ext in GROUPED_READINGS])
        session.flush()
        models.approve_model(session, tmp_path / "g.yaml", olga, MONTH_AGO)
        inputs.import_readings(session, tmp_path / "g.csv", UTC, MONTH_AGO)
        scoring.score_portfolio(session, MONTH_AGO, MONTH_AGO)
        scoring.score_portfolio(session, NOW, NOW)


def check_group_means(database: Database) -> None:
    data = report(database)
    # Now: value (20 + 90 + 30) / 3 = 46.67, care (25 + 100 + 0) / 3 = 41.67, all (22 + 94 + 18) / 3 = 44.67.
    # A month ago: value (60 + 80 + 30) / 3 = 56.67, care (75 + 100 + 0) / 3 = 58.33, all (66 + 88 + 18) / 3 = 57.33.
    assert [(g.name, g.depth, g.mean, g.accounts, g.previous, g.change) for g in data.groups] == [
        ("all", 0, 44.67, 3, 57.33, -12.67),  # 134 / 3 - 172 / 3 = -38 / 3
        ("value", 1, 46.67, 3, 56.67, -10.0),
        ("care", 1, 41.67, 3, 58.33, -16.67),  # 125 / 3 - 175 / 3 = -50 / 3
    ]
    assert data.groups_previous_as_of == MONTH_AGO
    assert [(b.name, b.color, b.count) for b in data.buckets] == [("risk", "red", 2), ("fine", "green", 1)]


def test_group_means_and_their_change_by_hand(database: Database, tmp_path: Path) -> None:
    seed_grouped(database, tmp_path)
    check_group_means(database)


@pytest.mark.postgres
def test_group_means_on_postgresql(pg_database: Database, tmp_path: Path) -> None:
    seed_grouped(pg_database, tmp_path)  # the subscores are averaged in SQL, out of the JSON column
    check_group_means(pg_database)
