"""`latest_snapshots` follows every write of `score_snapshots` (migration 0021's triggers): a newer snapshot moves
an account's row, an older one does not, an update or delete reads the newest again, bulk writes and COPY too; on
SQLite and PostgreSQL. And the live portfolio reads the same figures through it as through the snapshots."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, update

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, LatestSnapshot, ScoreSnapshot, User
from pulsecheck.workflow.models import approve_model
from tests.conftest import Factory

MODEL = Path(__file__).resolve().parents[2] / "examples" / "scoring.yaml"


def _kept(database: Database) -> dict[str, tuple[datetime, float | None, str | None]]:
    with database.transaction() as session:
        rows = session.execute(
            select(Account.external_id, LatestSnapshot.as_of, LatestSnapshot.score, LatestSnapshot.bucket)
            .join(Account, Account.id == LatestSnapshot.account_id)
        )
        return {ext: (as_of, score, bucket) for ext, as_of, score, bucket in rows}


def _follows_every_write(database: Database, now: datetime) -> None:
    factory = Factory(database, now)
    factory.team()
    factory.account("BETA", owner="bob")
    factory.account("GAMMA", owner="bob")
    day = timedelta(days=1)
    with database.transaction() as session:
        olga = session.scalars(select(User).where(User.name == "olga")).one()
        model = approve_model(session, MODEL, olga, now - 60 * day).id
        ids: dict[str, int] = {ext: pk for ext, pk in session.execute(select(Account.external_id, Account.id))}

    def snapshot(ext: str, days: int, score: float, bucket: str) -> dict[str, object]:
        return {"account_id": ids[ext], "as_of": now + days * day, "score": score, "bucket": bucket,
                "model_id": model, "provisional": False, "components": []}

    with database.transaction() as session:  # ORM, one by one: the newest wins whatever the order
        session.add(ScoreSnapshot(**snapshot("ACME", -2, 50.0, "neutral")))
        session.flush()
        session.add(ScoreSnapshot(**snapshot("ACME", -5, 90.0, "healthy")))
    assert _kept(database) == {"ACME": (now - 2 * day, 50.0, "neutral")}
    with database.transaction() as session:  # one bulk statement over several accounts
        session.execute(insert(ScoreSnapshot), [snapshot("BETA", -3, 30.0, "unhealthy"),
                                                snapshot("BETA", -1, 85.0, "healthy"),
                                                snapshot("ACME", -1, 20.0, "unhealthy")])
    assert _kept(database) == {"ACME": (now - day, 20.0, "unhealthy"), "BETA": (now - day, 85.0, "healthy")}
    with database.transaction() as session:  # a re-scored snapshot
        rescored = (ScoreSnapshot.account_id == ids["BETA"]) & (ScoreSnapshot.as_of == now - day)
        session.execute(update(ScoreSnapshot).where(rescored).values(score=60.0, bucket="neutral"))
    assert _kept(database)["BETA"] == (now - day, 60.0, "neutral")
    with database.transaction() as session:  # the newest deleted: the one before it again; all deleted: none
        session.execute(delete(ScoreSnapshot).where(ScoreSnapshot.as_of == now - day))
    assert _kept(database) == {"ACME": (now - 2 * day, 50.0, "neutral"), "BETA": (now - 3 * day, 30.0, "unhealthy")}
    with database.transaction() as session:
        session.execute(delete(ScoreSnapshot).where(ScoreSnapshot.account_id == ids["BETA"]))
    assert _kept(database) == {"ACME": (now - 2 * day, 50.0, "neutral")}


def test_the_latest_snapshot_follows_every_write(database: Database, now: datetime) -> None:
    _follows_every_write(database, now)


@pytest.mark.postgres
def test_the_latest_snapshot_follows_every_write_on_postgresql(pg_database: Database, now: datetime) -> None:
    _follows_every_write(pg_database, now)


@pytest.mark.postgres
def test_copy_keeps_the_latest_snapshot_on_postgresql(pg_database: Database, now: datetime) -> None:
    """A bulk COPY (the way large books are loaded) fires the statement trigger once."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from bulk import copy_insert

    factory = Factory(pg_database, now)
    factory.team()
    with pg_database.transaction() as session:
        olga = session.scalars(select(User).where(User.name == "olga")).one()
        model = approve_model(session, MODEL, olga, now - timedelta(days=60)).id
        acme = session.scalars(select(Account.id).where(Account.external_id == "ACME")).one()
    rows = [{"account_id": acme, "as_of": now - timedelta(days=d), "score": float(d), "bucket": "neutral",
             "model_id": model, "provisional": False, "components": []} for d in (9, 3, 6)]
    with pg_database.engine.begin() as conn:
        copy_insert(conn, ScoreSnapshot.__table__, iter(rows))
    assert _kept(pg_database) == {"ACME": (now - timedelta(days=3), 3.0, "neutral")}


def _scored_runs_keep_the_latest(database: Database, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    """`score` keeps latest_snapshots too (on SQLite by one statement per chunk of snapshots, its insert trigger
    set aside for the run and put back): a later as_of moves every account's row, a backfill of an earlier one
    does not, re-scoring an as_of replaces its rows; and after a run, a failed one included, every other write
    still finds the trigger."""
    from sqlalchemy import text

    from pulsecheck.storage.models import KpiReading
    from pulsecheck.workflow import scoring
    from pulsecheck.workflow.scoring import score_portfolio

    factory = Factory(database, now)
    factory.team()
    factory.account("BETA", owner="bob")
    day = timedelta(days=1)
    with database.transaction() as session:
        olga = session.scalars(select(User).where(User.name == "olga")).one()
        approve_model(session, MODEL, olga, now - 60 * day)
        ids: dict[str, int] = {ext: pk for ext, pk in session.execute(select(Account.external_id, Account.id))}
        session.execute(insert(KpiReading), [
            {"account_id": ids[ext], "kpi": "usage", "value": value, "observed_at": now - 10 * day, "source": "crm",
             "imported_at": now} for ext, value in (("ACME", 40.0), ("BETA", 90.0))
        ])  # fmt: skip
    trigger = _insert_trigger(database)

    def score(as_of: datetime) -> None:
        with database.transaction() as session:
            score_portfolio(session, as_of, now)
        assert _insert_trigger(database) == trigger

    score(now - 2 * day)
    assert _kept(database) == {"ACME": (now - 2 * day, 40.0, "neutral"), "BETA": (now - 2 * day, 90.0, "healthy")}
    score(now - 5 * day)  # a backfill: older than what is kept
    assert _kept(database) == {"ACME": (now - 2 * day, 40.0, "neutral"), "BETA": (now - 2 * day, 90.0, "healthy")}
    with database.transaction() as session:
        session.execute(update(KpiReading).where(KpiReading.account_id == ids["ACME"]).values(value=20.0))
    score(now - 2 * day)  # the same as_of again: its snapshots replaced
    assert _kept(database)["ACME"] == (now - 2 * day, 20.0, "unhealthy")
    score(now)
    assert {as_of for as_of, _, _ in _kept(database).values()} == {now}
    monkeypatch.setattr(scoring, "CHUNK", 1)  # ACME's snapshot written before BETA's bad survey stops the run
    with database.transaction() as session:  # a run that fails half-way, in a transaction that goes on
        session.execute(text("INSERT INTO survey_responses (account_id, kind, score, max_score, responded_at, "
                             "imported_at) VALUES (:a, 'nps', 50, 10, :t, :t)"), {"a": ids["BETA"], "t": now})
        with pytest.raises(ValueError, match="outside"):
            score_portfolio(session, now + day, now)
    assert _insert_trigger(database) == trigger
    assert _kept(database)["ACME"] == (now + day, 20.0, "unhealthy") and _kept(database)["BETA"][0] == now
    with database.transaction() as session:  # a write by another path still moves the row
        session.execute(insert(ScoreSnapshot), [{"account_id": ids["ACME"], "as_of": now + 3 * day, "score": 1.0,
                                                 "bucket": "unhealthy", "model_id": 1, "provisional": False,
                                                 "components": []}])  # fmt: skip
    assert _kept(database)["ACME"] == (now + 3 * day, 1.0, "unhealthy")


def _insert_trigger(database: Database) -> object:
    from sqlalchemy import text

    if database.engine.dialect.name != "sqlite":
        return None
    with database.engine.connect() as conn:
        return conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'latest_snapshots_insert'")).scalar()


def test_scoring_keeps_the_latest_snapshot_and_its_trigger(
    database: Database, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    _scored_runs_keep_the_latest(database, now, monkeypatch)


@pytest.mark.postgres
def test_scoring_keeps_the_latest_snapshot_on_postgresql(
    pg_database: Database, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    _scored_runs_keep_the_latest(pg_database, now, monkeypatch)
