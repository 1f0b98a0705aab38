"""The facts rules read from an account's score history: the newest snapshot's score, bucket and inputs, the peak
and drop over a window, the change against an older snapshot and the streak of low scores, on SQLite and on
PostgreSQL, for every account at once and for a block of ids (what a sharded worker reads). Expected values are
worked out by hand from the history below."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pulsecheck.storage.db import Database
from pulsecheck.storage.facts import IdRange, compute_facts
from pulsecheck.storage.models import Account, ScoreSnapshot, User
from pulsecheck.workflow.models import approve_model
from pulsecheck.workflow.users import add_user
from tests.conftest import NOW

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WINDOWS = {"score_drop": [30], "max_score": [30], "score_change": [7]}
LOW = 40.0
INPUTS = [
    {"kpi": "nps", "raw": -12.0, "status": "ok", "rating": "concern"},
    {"kpi": "usage", "raw": 55.0, "status": "stale", "rating": "watch"},
    {"kpi": "tickets", "raw": None, "status": "missing"},
]
# account -> (days before NOW, score) of its snapshots; the newest carries INPUTS
HISTORY: dict[str, list[tuple[float, float | None]]] = {
    "FALLING": [(40, 90.0), (25, 85.0), (10, 50.0), (8, 35.0), (0.5, 30.0)],
    "RECOVERED": [(20, 20.0), (12, 25.0), (1, 70.0)],
    "UNSCORED": [(9, 45.0), (2, None)],  # the newest snapshot has no score
    "SINKING": [(20, 20.0), (3, 15.0), (-2, 80.0)],  # low all along up to as_of (the 80 comes after it)
    "QUIET": [],
    "LATER": [(-1, 10.0)],  # a snapshot after as_of is not seen
}


def seed(database: Database) -> dict[str, int]:
    with database.transaction() as session:
        add_user(session, "olga", ["ops"], NOW)
        olga = session.scalars(select(User).where(User.name == "olga")).one()
        model_id = approve_model(session, EXAMPLES / "scoring.yaml", olga, NOW).id
        ids = {}
        for name, history in HISTORY.items():
            account = Account(external_id=name, name=name.title())
            session.add(account)
            session.flush()
            ids[name] = account.id
            for number, (days, score) in enumerate(history):
                newest = number == len(history) - 1
                session.add(ScoreSnapshot(
                    account_id=account.id, as_of=NOW - timedelta(days=days), score=score, bucket=f"b{number}",
                    model_id=model_id, components=INPUTS if newest else [], groups={"health": 61.5} if newest else None,
                ))  # fmt: skip
    return ids


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, database: Database) -> Iterator[Database]:
    yield database if request.param == "sqlite" else request.getfixturevalue("pg_database")


def facts_of(database: Database, ids: dict[str, int], block: bool) -> dict[str, dict[str, Any]]:
    scope = IdRange(min(ids.values()), max(ids.values())) if block else None
    with database.transaction() as session:
        found = compute_facts(session, NOW, WINDOWS, LOW, scope)
    return {name: found[account] for name, account in ids.items()}


@pytest.mark.parametrize("block", [False, True], ids=["portfolio", "block"])
def test_score_history_facts(db: Database, block: bool) -> None:
    facts = facts_of(db, seed(db), block)
    falling = facts["FALLING"]
    assert (falling["score"], falling["bucket"]) == (30.0, "b4")
    assert falling["max_score_30d"] == 85.0  # 90 is 40 days old
    assert falling["score_drop_30d"] == 55.0
    assert falling["score_change_7d"] == -5.0  # against the 35 of 8 days ago
    assert falling["low_score_streak"] == 2  # 30 and 35; 50 is not low
    assert (falling["stale_inputs"], falling["missing_inputs"], falling["concerns"]) == (1, 1, 1)
    assert (falling["kpi.nps"], falling["kpi_status.usage"], falling["group.health"]) == (-12.0, "watch", 61.5)

    recovered = facts["RECOVERED"]
    assert (recovered["max_score_30d"], recovered["score_drop_30d"]) == (70.0, 0.0)  # the newest is the peak
    assert recovered["score_change_7d"] == 45.0  # 70 against the 25 of 12 days ago
    assert recovered["low_score_streak"] == 0

    unscored = facts["UNSCORED"]
    assert (unscored["score"], unscored["bucket"]) == (None, "b1")
    assert (unscored["max_score_30d"], unscored["score_drop_30d"], unscored["score_change_7d"]) == (45.0, None, None)
    assert unscored["low_score_streak"] == 0  # an unscored snapshot ends the streak

    sinking = facts["SINKING"]
    assert (sinking["score"], sinking["low_score_streak"], sinking["max_score_30d"]) == (15.0, 2, 20.0)

    for name in ("QUIET", "LATER"):  # no snapshot up to as_of: nothing is known
        fact = facts[name]
        assert (fact["score"], fact["bucket"], fact["stale_inputs"], fact["concerns"]) == (None, None, None, None)
        assert (fact["max_score_30d"], fact["score_drop_30d"], fact["score_change_7d"]) == (None, None, None)
        assert fact["low_score_streak"] == 0
