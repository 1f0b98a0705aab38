"""Review services against a real database: life cycle, audit rows, signatures, read-only, imports, schema."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from pulsecheck.errors import InputError, RefusedError
from pulsecheck.states import review as machine
from pulsecheck.storage.db import HEAD_REVISION, Database
from pulsecheck.storage.migrate import head_revision, upgrade
from pulsecheck.storage.models import (
    Account,
    Review,
    ReviewEvent,
    ScoreSnapshot,
    ScoringModelVersion,
    User,
    declare_all,
)
from pulsecheck.workflow import reviews
from pulsecheck.workflow.accounts import account_dict, import_accounts, list_accounts


def events_of(database: Database, review_id: int) -> list[tuple[Any, ...]]:
    with database.transaction() as session:
        rows = session.scalars(select(ReviewEvent).where(ReviewEvent.review_id == review_id)
                               .order_by(ReviewEvent.id))
        return [(e.event, e.from_state, e.to_state, e.actor, e.cause, e.comment, e.at) for e in rows]


def user(session: Any, name: str) -> User:
    found = session.scalar(select(User).where(User.name == name))
    assert found is not None
    return found


@pytest.fixture
def submitted(factory: Any) -> int:
    factory.team()
    review_id = factory.review()
    factory.complete(review_id)
    assert factory.fire(review_id, "submit", "bob") == "submitted"
    return review_id


def test_full_life_cycle_writes_one_audit_row_per_event(factory: Any, database: Database) -> None:
    now = factory.now
    factory.team()
    review_id = factory.review()
    factory.complete(review_id)
    assert factory.fire(review_id, "submit", "bob") == "submitted"
    comment = "Agreed; chase the second champion"
    assert factory.fire(review_id, "approve", "maria", comment=comment) == "approved"
    assert factory.fire(review_id, "close", "bob", comment="done for this quarter") == "closed"

    assert events_of(database, review_id) == [
        ("open", None, "draft", "bob", "user", None, now),
        ("submit", "draft", "submitted", "bob", "user", None, now),
        ("approve", "submitted", "approved", "maria", "user", "Agreed; chase the second champion", now),
        ("close", "approved", "closed", "bob", "user", "done for this quarter", now),
    ]
    with database.transaction() as session:
        review = reviews.get_review(session, review_id)
        content = reviews.content_of(review)
        assert review.manager_comments == "Agreed; chase the second champion"  # approve --comment fills it
        assert (review.employee_signed_by, review.employee_signed_at) == ("bob", now)
        assert review.employee_digest == machine.employee_digest(content)
        assert (review.manager_signed_by, review.manager_signed_at) == ("maria", now)
        assert review.manager_digest == machine.manager_digest(content)
        assert reviews.verify(review) == []
        assert reviews.replayed_state(review) == "closed"


def test_scheduler_and_rule_causes_are_recorded(submitted: int, factory: Any, database: Database) -> None:
    now = factory.now
    factory.fire(submitted, "approve", "maria", comment="ok")
    with database.transaction() as session:
        reviews.transition(session, submitted, "reopen", "pulsecheck", now, comment="score dropped",
                           cause="rule:drop-with-complaints")
    with database.transaction() as session:
        assert reviews.get_review(session, submitted).employee_digest is None  # reopen clears signatures
    factory.fire(submitted, "submit", "bob")
    factory.fire(submitted, "approve", "maria")
    with database.transaction() as session:
        reviews.transition(session, submitted, "close", "pulsecheck", now, cause="scheduler")
    rows = events_of(database, submitted)
    assert [(e[0], e[3], e[4]) for e in rows[3:]] == [
        ("reopen", "pulsecheck", "rule:drop-with-complaints"),
        ("submit", "bob", "user"),
        ("approve", "maria", "user"),
        ("close", "pulsecheck", "scheduler"),
    ]
    assert factory.state(submitted) == "closed"


def test_refused_event_changes_nothing(submitted: int, factory: Any, database: Database) -> None:
    before = events_of(database, submitted)
    with pytest.raises(RefusedError, match=r"only the assigned approver \(maria\) .* may approve, not olga"):
        factory.fire(submitted, "approve", "olga", comment="I approve")
    with database.transaction() as session:
        review = reviews.get_review(session, submitted)
        assert review.state == "submitted"
        assert review.manager_comments is None  # the refused approve --comment left no trace
    assert events_of(database, submitted) == before


def test_reject_clears_signatures_and_keeps_the_comment(submitted: int, factory: Any,
                                                         database: Database) -> None:
    now = factory.now
    assert factory.fire(submitted, "reject", "maria", comment="Risk 1 needs evidence") == "draft"
    with database.transaction() as session:
        review = reviews.get_review(session, submitted)
        assert (review.employee_signed_by, review.employee_signed_at, review.employee_digest) == (None,) * 3
        assert (review.manager_signed_by, review.manager_signed_at, review.manager_digest) == (None,) * 3
        assert reviews.verify(review) == []
    assert events_of(database, submitted)[-1] == (
        "reject", "submitted", "draft", "maria", "user", "Risk 1 needs evidence", now
    )
    assert factory.fire(submitted, "submit", "bob") == "submitted"  # can be re-submitted and signed again
    with database.transaction() as session:
        assert reviews.get_review(session, submitted).employee_signed_by == "bob"


def test_reject_without_comment_is_refused(submitted: int, factory: Any) -> None:
    with pytest.raises(RefusedError, match="a comment is required"):
        factory.fire(submitted, "reject", "maria")
    assert factory.state(submitted) == "submitted"


def test_approved_content_is_frozen_and_reopen_clears_the_signatures(submitted: int, factory: Any,
                                                                       database: Database) -> None:
    now = factory.now
    factory.fire(submitted, "approve", "maria", comment="ok")
    for who, field in (("bob", "goal_summary"), ("maria", "manager_comments")):
        with database.transaction() as session, pytest.raises(RefusedError, match="approved and frozen: reopen"):
            reviews.set_field(session, submitted, field, "changed", user(session, who), now, tz=UTC)
    with database.transaction() as session, pytest.raises(RefusedError, match="approved and frozen"):
        reviews.add_risk(session, submitted, user(session, "bob"), now, "Budget freeze")
    factory.fire(submitted, "reopen", "maria", comment="new facts")
    with database.transaction() as session:
        review = reviews.get_review(session, submitted)
        assert (review.state, review.employee_digest, review.manager_digest) == ("draft", None, None)
        reviews.set_field(session, submitted, "goal_summary", "Only 200 seats", user(session, "bob"), now, tz=UTC)
    assert [e[0] for e in events_of(database, submitted)][-2:] == ["approve", "reopen"]


def test_edit_after_submission_blocks_approval(submitted: int, factory: Any, database: Database) -> None:
    now = factory.now
    with database.transaction() as session:
        reviews.add_risk(session, submitted, user(session, "bob"), now, "Budget freeze")
    with pytest.raises(RefusedError, match="changed after the reviewer signed it"):
        factory.fire(submitted, "approve", "maria", comment="ok")
    assert [e[0] for e in events_of(database, submitted)] == ["open", "submit", "edit"]


def test_edits_before_signing_are_not_audited(factory: Any, database: Database) -> None:
    factory.team()
    review_id = factory.review()
    factory.complete(review_id)
    assert [e[0] for e in events_of(database, review_id)] == ["open"]


@pytest.mark.parametrize("ending", ["close", "withdraw"])
def test_a_closed_review_is_read_only(submitted: int, factory: Any, database: Database, ending: str) -> None:
    now = factory.now
    if ending == "close":
        factory.fire(submitted, "approve", "maria", comment="ok")
        factory.fire(submitted, "close", "maria")
    else:
        factory.fire(submitted, "reject", "maria", comment="duplicate")
        factory.fire(submitted, "withdraw", "maria", comment="duplicate of another review")
    assert factory.state(submitted) == "closed"
    before = events_of(database, submitted)
    attempts = [
        lambda s: reviews.set_field(s, submitted, "goal_summary", "late change", user(s, "maria"), now, tz=UTC),
        lambda s: reviews.add_risk(s, submitted, user(s, "bob"), now, "late risk"),
        lambda s: reviews.add_action(s, submitted, user(s, "bob"), now, 1, "late action"),
    ]
    for attempt in attempts:
        with pytest.raises(RefusedError, match=f"review {submitted} is closed and read-only"):
            with database.transaction() as session:
                attempt(session)
    with pytest.raises(RefusedError, match="the review is closed"):
        factory.fire(submitted, "reopen", "maria")
    with database.transaction() as session:
        review = reviews.get_review(session, submitted)
        assert review.goal_summary == "320 seats, on track"
        assert len(review.risks) == 1 and len(review.actions) == 1
    assert events_of(database, submitted) == before


def test_only_one_open_review_per_account(factory: Any, database: Database) -> None:
    factory.team()
    first = factory.review()
    with pytest.raises(RefusedError, match=f"account ACME already has review {first} \\(draft\\)"):
        factory.review()
    factory.fire(first, "withdraw", "maria", comment="opened by mistake")
    second = factory.review()
    assert second != first
    with database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Review)) == 2


BASELINE_MODEL = """\
version: "2026.11"
kpis:
  - {name: usage, weight: 100, scale: {min: 0, max: 200}}
buckets:
  - {name: unhealthy, below: 40, color: red}
  - {name: healthy, color: green}
"""


def _component(raw: float) -> dict[str, Any]:
    """A snapshot component of usage (scale 0-200, weight 100): normalized raw / 2, contribution the same."""
    rating = "concern" if raw / 2 < 40 else "strength" if raw / 2 >= 80 else "neutral"  # the default thresholds
    return {"kpi": "usage", "raw": raw, "normalized": raw / 2, "weight": 100, "effective_weight": 100,
            "contribution": raw / 2, "status": "ok", "rating": rating, "observed_at": None}


def test_baseline_comes_from_the_latest_snapshot(factory: Any, database: Database) -> None:
    now = factory.now
    factory.team()
    factory.account("GLOBEX", owner="bob", manager="maria")
    with database.transaction() as session:
        acme = session.scalar(select(Account).where(Account.external_id == "ACME"))
        assert acme is not None
        model = ScoringModelVersion(version="2026.11", content=BASELINE_MODEL, sha256="0" * 64, status="approved",
                                    approved_by="olga", approved_at=now)
        session.add(model)
        session.flush()
        # inserted newest first, so that "latest" must mean as_of, not insertion order
        for days_ago, raw, bucket in ((1, 75.0, "unhealthy"), (30, 164.0, "healthy"), (60, 110.0, "healthy")):
            session.add(ScoreSnapshot(account_id=acme.id, as_of=now - timedelta(days=days_ago), score=raw / 2,
                                      bucket=bucket, model_id=model.id, components=[_component(raw)],
                                      provisional=False))
    acme_review, globex_review = factory.review("ACME"), factory.review("GLOBEX")
    with database.transaction() as session:
        acme = reviews.get_review(session, acme_review)
        assert (acme.baseline_score, acme.baseline_bucket) == (37.5, "unhealthy")
        assert reviews.review_dict(acme)["baseline"] == {"score": 37.5, "bucket": "unhealthy"}
        # the scorecard of the newest snapshot: usage 75 of 0-200 -> 37.5, below 40: an area of concern
        card = reviews.review_dict(acme, with_context=True)["baseline"]["scorecard"]
        assert (card["as_of"], card["model_version"], card["score"], card["bucket"], card["bucket_color"]) == (
            (now - timedelta(days=1)).isoformat(), "2026.11", 37.5, "unhealthy", "red")
        assert [(k["kpi"], k["raw"], k["normalized"], k["weight"], k["contribution"], k["rating"], k["color"])
                for k in card["kpis"]] == [("usage", 75.0, 37.5, 100, 37.5, "concern", "orange")]
        assert (card["concerns"], card["strengths"], card["groups"]) == (["usage"], [], [])
        globex = reviews.get_review(session, globex_review)
        assert (globex.baseline_score, globex.baseline_bucket, globex.baseline) == (None, None, None)
        assert reviews.review_dict(globex, with_context=True)["baseline"]["scorecard"] is None


# --- schema -----------------------------------------------------------------------------------------


def assert_models_match_migrations(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, declare_all()) == []  # every table, not only those declared so far


def test_models_and_migrations_agree(database: Database) -> None:
    assert_models_match_migrations(database)
    assert HEAD_REVISION == head_revision()


@pytest.mark.postgres
def test_models_and_migrations_agree_on_postgresql(pg_url: str) -> None:
    database = Database(pg_url)
    try:
        upgrade(database.engine)
        assert_models_match_migrations(database)
    finally:
        database.dispose()


def test_upgrade_works_when_the_database_path_has_a_percent_sign(tmp_path: Path) -> None:
    folder = tmp_path / "100%"
    folder.mkdir()
    database = Database(f"sqlite:///{folder / 'pulsecheck.db'}")
    try:
        upgrade(database.engine)
        assert_models_match_migrations(database)
    finally:
        database.dispose()


# --- account imports -----------------------------------------------------------------------------

CSV_HEADER = "external_id,name,segment,tier,arr,owner,manager,renewal_date,contract_start,stage\n"


def accounts_table(database: Database) -> list[dict[str, Any]]:
    with database.transaction() as session:
        return [account_dict(a) for a in list_accounts(session)]


def do_import(database: Database, path: Path) -> tuple[int, int]:
    with database.transaction() as session:
        result = import_accounts(session, path)
    return result.created, result.updated


@pytest.fixture
def people(factory: Any) -> None:
    factory.user("maria", "manager")
    factory.user("bob", "reviewer", manager="maria")


@pytest.mark.usefixtures("people")
def test_csv_import_creates_then_updates_by_external_id(tmp_path: Path, database: Database) -> None:
    first = tmp_path / "accounts.csv"
    first.write_text(CSV_HEADER
                     + "ACME,Acme Corp,enterprise,gold,120000,bob,maria,2027-01-15,2024-01-01,live\n"
                     + "GLOBEX,Globex,smb,,9000,bob,,,,trial\n")
    assert do_import(database, first) == (2, 0)
    acme = accounts_table(database)[0]
    assert acme == {"id": "ACME", "name": "Acme Corp", "segment": "enterprise", "tier": "gold",
                    "arr": 120000.0, "owner": "bob", "manager": "maria", "renewal_date": "2027-01-15",
                    "contract_start": "2024-01-01", "stage": "live"}

    second = tmp_path / "accounts-2.csv"
    second.write_text(CSV_HEADER
                      + "ACME,Acme Corporation,enterprise,platinum,150000,bob,maria,2027-02-01,,live\n"
                      + "INITECH,Initech,mid,,50000,maria,,,,live\n")
    assert do_import(database, second) == (1, 1)
    table = {a["id"]: a for a in accounts_table(database)}
    assert sorted(table) == ["ACME", "GLOBEX", "INITECH"]
    acme = table["ACME"]
    assert (acme["name"], acme["tier"], acme["arr"], acme["renewal_date"], acme["contract_start"]) == (
        "Acme Corporation", "platinum", 150000.0, "2027-02-01", None)
    assert table["GLOBEX"]["stage"] == "trial"  # untouched by the second file


@pytest.mark.usefixtures("people")
def test_json_import_creates_then_updates_by_external_id(tmp_path: Path, database: Database) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps([
        {"external_id": "ACME", "name": "Acme Corp", "owner": "bob", "arr": 120000,
         "renewal_date": "2027-01-15"},
        {"external_id": "GLOBEX", "name": "Globex", "segment": "smb"},
    ]))
    assert do_import(database, path) == (2, 0)
    path.write_text(json.dumps({"accounts": [
        {"external_id": "ACME", "name": "Acme Corp", "owner": "maria", "arr": 130000,
         "renewal_date": "2027-03-01"},
    ]}))
    assert do_import(database, path) == (0, 1)
    table = {a["id"]: a for a in accounts_table(database)}
    assert len(table) == 2
    assert (table["ACME"]["owner"], table["ACME"]["arr"], table["ACME"]["renewal_date"]) == (
        "maria", 130000.0, "2027-03-01")


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    ("name", "rows", "message"),
    [
        pytest.param("bad.csv", CSV_HEADER + "ACME,Acme Renamed,,,,bob,,,,\nNEW1,New One,,,,bob,,,,\n"
                     "NEW2,New Two,,,,ghost,,,,\n",
                     "bad.csv: row 4, column 'owner': unknown user 'ghost'", id="csv-unknown-owner"),
        pytest.param("bad.csv", CSV_HEADER + "ACME,Acme Renamed,,,,bob,,,,\nNEW1,New One,,,,,,2027-02-30,,\n",
                     "bad.csv: row 3, column 'renewal_date': '2027-02-30' is not a date (YYYY-MM-DD)",
                     id="csv-bad-date"),
        pytest.param("bad.json", json.dumps([
            {"external_id": "ACME", "name": "Acme Renamed"},
            {"external_id": "NEW1", "name": "New One", "manager": "nobody"}]),
            "bad.json: row 2, column 'manager': unknown user 'nobody'", id="json-unknown-manager"),
        pytest.param("bad.json", json.dumps([
            {"external_id": "ACME", "name": "Acme Renamed"},
            {"external_id": "NEW1", "name": "New One", "contract_start": "01/02/2024"}]),
            "bad.json: row 2, column 'contract_start': '01/02/2024' is not a date (YYYY-MM-DD)",
            id="json-bad-date"),
    ],
)
def test_a_bad_row_imports_nothing(tmp_path: Path, database: Database, name: str, rows: str,
                                   message: str) -> None:
    good = tmp_path / "good.csv"
    good.write_text(CSV_HEADER + "ACME,Acme Corp,enterprise,,,bob,maria,2027-01-15,,live\n")
    do_import(database, good)
    before = accounts_table(database)
    path = tmp_path / name
    path.write_text(rows)
    with pytest.raises(InputError) as error:
        do_import(database, path)
    assert str(error.value) == f"{tmp_path}/{message}"
    assert accounts_table(database) == before

