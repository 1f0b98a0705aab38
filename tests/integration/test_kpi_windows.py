"""KPI windows and ticket windows as rules see them: values computed by hand from a few readings and tickets,
and ChurnZero's two public examples firing end to end through durable-rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from pulsecheck.rules import durable
from pulsecheck.rules.language import load_rules, windows_used
from pulsecheck.storage.db import Database
from pulsecheck.storage.facts import compute_facts
from pulsecheck.storage.models import Account, Issue, KpiReading
from tests.conftest import Factory

AS_OF = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _reading(session, account: int, kpi: str, value: float, days_ago: float) -> None:
    at = AS_OF - days_ago * DAY
    session.add(KpiReading(account_id=account, kpi=kpi, value=value, observed_at=at, imported_at=AS_OF))


def _ticket(
    session, account: int, number: int, severity: str, days_ago: float, closed: bool = False, kind: str = "ticket"
) -> None:
    opened = AS_OF - days_ago * DAY
    session.add(
        Issue(
            external_id=f"T-{account}-{number}",
            account_id=account,
            kind=kind,
            severity=severity,
            status="closed" if closed else "open",
            opened_at=opened,
            closed_at=opened + DAY if closed else None,
        )
    )


@pytest.fixture
def portfolio(database: Database, factory: Factory) -> dict[str, int]:
    return seed(database, factory)


def seed(database: Database, factory: Factory) -> dict[str, int]:
    """Four accounts:
    DROP  logins 1000 a month ago (day 31), 550 on day 1: -45 %; 3 high tickets in 60 days (one closed), one
          high at day 61 (outside), one critical and one low inside, one high complaint (not a ticket).
    FLAT  logins 1000 (day 31) then 700 (day 1): -30 %; 2 high tickets.
    ZERO  logins 0 (day 40) then 0 (day 5): 0 %; min/avg over 30 days from the one reading inside.
    NONE  no readings at all, no tickets.
    """
    for name in ("DROP", "FLAT", "ZERO", "NONE"):
        factory.account(name)
    with database.transaction() as session:
        ids = {a.external_id: a.id for a in session.scalars(select(Account))}
        drop, flat, zero = ids["DROP"], ids["FLAT"], ids["ZERO"]
        _reading(session, drop, "logins", 1000, 31)
        _reading(session, drop, "logins", 800, 20)
        _reading(session, drop, "logins", 550, 1)
        _reading(session, drop, "usage", 90, 1)  # another KPI: never mixed in
        _reading(session, flat, "logins", 1000, 31)
        _reading(session, flat, "logins", 700, 1)
        _reading(session, zero, "logins", 0, 40)
        _reading(session, zero, "logins", 0, 5)
        _ticket(session, drop, 1, "high", 2)
        _ticket(session, drop, 2, "high", 30, closed=True)
        _ticket(session, drop, 3, "high", 59.5)
        _ticket(session, drop, 4, "high", 61)
        _ticket(session, drop, 5, "critical", 10)
        _ticket(session, drop, 6, "low", 10, closed=True)
        _ticket(session, drop, 7, "high", 3, kind="complaint")
        _ticket(session, flat, 1, "high", 5)
        _ticket(session, flat, 2, "high", 6)
    return ids


WINDOW_FACTS = [
    "kpi_change_pct.logins_30d",
    "kpi_avg.logins_30d",
    "kpi_min.logins_30d",
    "kpi_avg.logins_45d",
    "tickets_high_60d",
    "tickets_critical_60d",
    "tickets_low_60d",
    "tickets_medium_60d",
    "tickets_60d",
    "tickets_high_7d",
]


def _facts(database: Database, ids: dict[str, int]) -> dict[str, dict[str, object]]:
    rules = load_rules(
        "version: 1\nrules:\n"
        + "".join(
            f"  - id: r{i}\n    when: {{{fact}: {{exists: true}}}}\n    then: {{notify: [owner]}}\n"
            for i, fact in enumerate(WINDOW_FACTS)
        ),
        "w.yaml",
    )
    with database.transaction() as session:
        facts = compute_facts(session, AS_OF, windows_used(rules.rules))
    names = {v: k for k, v in ids.items()}
    return {names[acc]: {f: values.get(f) for f in WINDOW_FACTS} for acc, values in facts.items()}


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_window_facts_by_hand(engine: str, request: pytest.FixtureRequest, now: datetime) -> None:
    database: Database = request.getfixturevalue("database" if engine == "sqlite" else "pg_database")
    facts = _facts(database, seed(database, Factory(database, now)))
    assert facts["DROP"] == {
        "kpi_change_pct.logins_30d": -45.0,  # (550 - 1000) / 1000
        "kpi_avg.logins_30d": 675.0,  # 800 and 550 are inside the 30 days; 1000 (day 31) is not
        "kpi_min.logins_30d": 550.0,
        "kpi_avg.logins_45d": 783.33,  # (1000 + 800 + 550) / 3
        "tickets_high_60d": 3,  # days 2, 30 (closed since) and 59.5; not day 61, not the complaint
        "tickets_critical_60d": 1,
        "tickets_low_60d": 1,
        "tickets_medium_60d": 0,
        "tickets_60d": 5,
        "tickets_high_7d": 1,
    }
    assert facts["FLAT"]["kpi_change_pct.logins_30d"] == -30.0
    assert facts["FLAT"]["tickets_high_60d"] == 2
    assert facts["ZERO"]["kpi_change_pct.logins_30d"] == 0.0  # 0 then 0: no change
    assert (facts["ZERO"]["kpi_avg.logins_30d"], facts["ZERO"]["kpi_min.logins_30d"]) == (0.0, 0.0)
    assert facts["NONE"] == {**{f: None for f in WINDOW_FACTS[:4]}, **{f: 0 for f in WINDOW_FACTS[4:]}}


def test_only_the_windows_the_rules_use_are_computed(database: Database, portfolio: dict[str, int]) -> None:
    rules = load_rules(
        "version: 1\nrules:\n  - id: a\n    when: {kpi_min.logins_30d: {lt: 600}}\n    then: {notify: [owner]}\n",
        "w.yaml",
    )
    with database.transaction() as session:
        facts = compute_facts(session, AS_OF, windows_used(rules.rules))
    names = set(facts[portfolio["DROP"]])
    assert "kpi_min.logins_30d" in names
    assert not {n for n in names if n.startswith(("kpi_avg", "kpi_change_pct", "tickets_"))}


CHURNZERO = """\
version: 1
rules:
  - id: logins-down-40
    description: Logins in the past month down 40% or more against the month before
    when:
      kpi_change_pct.logins_30d: {lte: -40}
    then:
      escalate: {severity: medium, reason: "logins {kpi_change_pct.logins_30d}% in 30 days"}
  - id: high-tickets-60d
    description: More than 2 high-priority tickets in the last 60 days
    when:
      tickets_high_60d: {gt: 2}
    then:
      notify: {roles: [owner], message: "{tickets_high_60d} high tickets in 60 days"}
"""


def test_churnzero_examples_fire_end_to_end_in_durable_rules(
    database: Database, portfolio: dict[str, int], tmp_path: Path
) -> None:
    rules = load_rules(CHURNZERO, str(tmp_path / "churnzero.yaml"))
    with database.transaction() as session:
        facts = compute_facts(session, AS_OF, windows_used(rules.rules))
    fired = durable.evaluate(rules, facts.items(), workers=1)
    names = {v: k for k, v in portfolio.items()}
    # DROP: -45 % and 3 high tickets; FLAT: -30 % and 2; ZERO: 0 %; NONE: no readings (missing: false)
    assert sorted((names[a], r) for a, r in fired) == [("DROP", "high-tickets-60d"), ("DROP", "logins-down-40")]
