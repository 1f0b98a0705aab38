"""Migration 0022 swaps the readings' and survey responses' indexes for covering ones: up, down and up again on a
database with data keeps every row, and the schema then matches the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import alembic_config, upgrade


def indexes(database: Database) -> dict[str, list[str]]:
    found = inspect(database.engine)
    tables = ("kpi_readings", "survey_responses")
    return {table: sorted(index["name"] for index in found.get_indexes(table)) for table in tables}


def check_up_down_up(database: Database) -> None:
    upgrade(database.engine, "0021")
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO accounts (id, external_id, name) VALUES (1, 'A1', 'Acme')"))
        conn.execute(text("INSERT INTO kpi_readings (account_id, kpi, value, observed_at, source, imported_at) "
                          "VALUES (1, 'usage', 1.5, '2026-01-01 00:00:00', 'app', '2026-01-01 00:00:00')"))  # fmt: skip
        conn.execute(text("INSERT INTO survey_responses (account_id, kind, score, max_score, responded_at, "
                          "imported_at) VALUES (1, 'nps', 9, 10, '2026-01-01', '2026-01-01')"))  # fmt: skip
    before = {"kpi_readings": ["ix_kpi_readings_account_kpi_observed"],
              "survey_responses": ["ix_survey_responses_account_kind"]}  # fmt: skip
    after = {"kpi_readings": ["ix_kpi_readings_covering"], "survey_responses": ["ix_survey_responses_covering"]}
    assert indexes(database) == before
    upgrade(database.engine)
    assert indexes(database) == after
    command.downgrade(alembic_config(database.engine), "0021")
    assert indexes(database) == before
    upgrade(database.engine)
    assert indexes(database) == after
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT kpi, value, source FROM kpi_readings")).all() == [("usage", 1.5, "app")]
        assert conn.execute(text("SELECT kind, score FROM survey_responses")).all() == [("nps", 9.0)]


def test_up_down_and_up_again_keep_the_rows(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        check_up_down_up(database)
    finally:
        database.dispose()


@pytest.mark.postgres
def test_the_same_on_postgresql(pg_url: str) -> None:
    database = Database(pg_url)
    try:
        check_up_down_up(database)
    finally:
        database.dispose()
