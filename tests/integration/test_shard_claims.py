"""Two workers claiming shards at the same moment on PostgreSQL: each gets one. A claim locks only the row it
takes, so a claim running while another is in the middle of its own still finds a free shard (when a claim
locked every candidate, the other worker found none, ended, and the run had to start a new one)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import EvaluationRun
from pulsecheck.workflow import shards
from pulsecheck.workflow.leases import this_process, wall_clock
from tests.conftest import NOW


@pytest.fixture
def planned(pg_database: Database, pg_url: str) -> Iterator[tuple[Database, Database, int]]:
    """A running run of 4 shards, and a second Database on the same schema (the other worker)."""
    with pg_database.transaction() as session:
        run = EvaluationRun(started_at=NOW, as_of=NOW, status="running", lease_until=wall_clock())
        session.add(run)
        session.flush()
        assert shards.plan(session.connection(), run.id, last_account=4 * shards.BLOCK - 1, workers=1) == 4
        run_id = run.id
    other = Database(pg_url)
    yield pg_database, other, run_id
    other.dispose()


def test_a_claim_made_while_another_is_half_done_gets_another_shard(planned: tuple[Database, Database, int]) -> None:
    first_db, second_db, run_id = planned
    second: list[shards.Claim | None] = []

    def meanwhile(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FOR UPDATE" in statement and not second:  # the first claim holds its candidate locked, not yet taken
            second.append(shards.claim(second_db.engine, this_process(), run_id))

    event.listen(first_db.engine, "after_cursor_execute", meanwhile)
    try:
        first = shards.claim(first_db.engine, this_process(), run_id)
    finally:
        event.remove(first_db.engine, "after_cursor_execute", meanwhile)
    try:
        assert first is not None and second and second[0] is not None
        assert {first.shard, second[0].shard} == {0, 1}
    finally:
        for held, database in ((first, first_db), (second[0] if second else None, second_db)):
            if held is not None:
                shards.give_back(database.engine, held, "test over")
