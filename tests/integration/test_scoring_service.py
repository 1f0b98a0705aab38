"""Scoring services against a real database: model governance, scoring a hand-built portfolio into snapshots,
the deviation life cycle, all-or-nothing imports, review baselines and trends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from pulsecheck.errors import InputError, RefusedError
from pulsecheck.scoring.schema import load_model_file
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import (
    Account,
    Deviation,
    Issue,
    KpiReading,
    ScoreSnapshot,
    ScoringModelVersion,
    SurveyResponse,
    User,
)
from pulsecheck.workflow import account_views, inputs, models, reviews, scoring
from pulsecheck.workflow import deviations as deviation

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
EXAMPLE_MODEL = Path(__file__).resolve().parents[2] / "examples" / "scoring.yaml"
MODEL_TEXT = EXAMPLE_MODEL.read_text(encoding="utf-8")

# ACME: every input fresh; the newest of three usage readings counts. BETA: usage 14 days old (max_age 7d), no
# surveys. GAMMA: two sources disagree on the newest usage reading. DELTA: no input at all.
READINGS = """\
account,kpi,value,observed_at,source
ACME,open_tickets,5,2026-10-01T06:00:00Z,helpdesk
ACME,on_time_delivery,90,2026-10-01T06:00:00Z,pmo
ACME,usage,90,2026-10-19T06:00:00Z,analytics
ACME,usage,40,2026-11-16T06:00:00Z,analytics
ACME,usage,80,2026-11-23T06:00:00Z,analytics
BETA,usage,50,2026-11-10T06:00:00Z,analytics
BETA,open_tickets,14,2026-11-20T06:00:00Z,helpdesk
BETA,on_time_delivery,20,2026-11-20T06:00:00Z,pmo
GAMMA,usage,60,2026-11-23T06:00:00Z,crm
GAMMA,usage,70,2026-11-23T06:00:00Z,product
GAMMA,open_tickets,0,2026-11-20T06:00:00Z,helpdesk
GAMMA,on_time_delivery,100,2026-11-20T06:00:00Z,pmo
"""
# ACME: NPS 2 promoters, 1 passive, 1 detractor of 4 = +25 (an empty max_score means 10 for NPS); CSAT 9/10 = 90.
SURVEYS = """\
account,kind,score,max_score,responded_at
ACME,nps,10,,2026-10-05T12:00:00Z
ACME,nps,9,10,2026-10-06T12:00:00Z
ACME,nps,7,10,2026-10-07T12:00:00Z
ACME,nps,3,10,2026-10-08T12:00:00Z
ACME,csat,5,5,2026-10-05T12:00:00Z
ACME,csat,4,5,2026-10-06T12:00:00Z
GAMMA,nps,10,10,2026-11-01T12:00:00Z
GAMMA,csat,5,5,2026-11-01T12:00:00Z
"""
ISSUES = """\
external_id,account,kind,severity,status,opened_at,closed_at,title
CS-1,ACME,complaint,high,open,2026-11-02,,Exports time out
TK-2,BETA,ticket,low,open,2026-11-10,,Slow dashboard
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def user(session: Any, name: str) -> User:
    return session.scalars(select(User).where(User.name == name)).one()


def account_id(session: Any, external_id: str) -> int:
    return session.scalars(select(Account.id).where(Account.external_id == external_id)).one()


def approve(database: Database, path: Path = EXAMPLE_MODEL, actor: str = "olga") -> ScoringModelVersion:
    with database.transaction() as session:
        return models.approve_model(session, path, user(session, actor), NOW)


def score(database: Database, as_of: datetime = NOW, now: datetime | None = None) -> scoring.ScoreRun:
    with database.transaction() as session:
        return scoring.score_portfolio(session, as_of, now or as_of)


def import_file(database: Database, kind: str, path: Path) -> inputs.InputImport:
    with database.transaction() as session:
        if kind == "readings":
            return inputs.import_readings(session, path, UTC, NOW)
        if kind == "surveys":
            return inputs.import_surveys(session, path, UTC, NOW)
        return inputs.import_issues(session, path, UTC)


def snapshots(database: Database, as_of: datetime = NOW) -> dict[str, ScoreSnapshot]:
    with database.transaction() as session:
        rows = session.execute(select(Account.external_id, ScoreSnapshot).join(
            Account, Account.id == ScoreSnapshot.account_id).where(ScoreSnapshot.as_of == as_of))
        return {ext: snap for ext, snap in rows}


def deviations(database: Database, open_only: bool = False) -> dict[tuple[str | None, str, str], Deviation]:
    """(account, kind, subject) → deviation; fails if one cause has two live rows."""
    with database.transaction() as session:
        names = deviation.account_names(session)
        found: dict[tuple[str | None, str, str], Deviation] = {}
        for d in deviation.list_deviations(session, open_only=open_only):
            key = (names.get(d.account_id) if d.account_id else None, d.kind, d.subject)
            if d.status != "resolved":
                assert key not in found or found[key].status == "resolved", f"two live deviations for {key}"
                found[key] = d
            else:
                found.setdefault(key, d)
        return found


def count(database: Database, model: Any) -> int:
    with database.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def people(factory: Any) -> Any:
    factory.user("maria", "manager")
    factory.user("bob", "reviewer", manager="maria")
    factory.user("olga", "ops")
    return factory


@pytest.fixture
def portfolio(people: Any, database: Database, tmp_path: Path) -> Database:
    """Four accounts with hand-checkable inputs and the example model approved."""
    for name in ("ACME", "BETA", "GAMMA", "DELTA"):
        people.account(name, owner="bob", manager="maria")
    assert import_file(database, "readings", write(tmp_path, "readings.csv", READINGS)).created == 12
    assert import_file(database, "surveys", write(tmp_path, "surveys.csv", SURVEYS)).created == 8
    approve(database)
    return database


def model_variant(tmp_path: Path, *changes: tuple[str, str], name: str = "live.yaml") -> Path:
    """The example model with `(old, new)` text replacements, written to a file."""
    text = MODEL_TEXT
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    return write(tmp_path, name, text)


NEW_VERSION = ('version: "2026.11"', 'version: "2026.12"')


# --- model governance --------------------------------------------------------------------------------------


@pytest.mark.parametrize("first, second", [("olga", "maria"), ("maria", "olga")])
def test_ops_and_managers_approve_and_a_new_version_retires_the_previous(
    people: Any, database: Database, tmp_path: Path, first: str, second: str
) -> None:
    v1 = approve(database, actor=first)
    assert (v1.version, v1.status, v1.approved_by, v1.approved_at) == ("2026.11", "approved", first, NOW)
    newer = model_variant(tmp_path, NEW_VERSION)
    v2 = approve(database, newer, actor=second)
    with database.transaction() as session:
        versions = [(v.version, v.status, v.approved_by) for v in models.model_versions(session)]
        row, model = models.approved_model(session)
    assert versions == [("2026.12", "approved", second), ("2026.11", "retired", first)]
    assert (row.id, model.version) == (v2.id, "2026.12")


def test_a_reviewer_cannot_approve_a_model(people: Any, database: Database) -> None:
    with pytest.raises(RefusedError, match="only a manager, an ops or an admin may approve, not bob"):
        approve(database, actor="bob")
    assert count(database, ScoringModelVersion) == 0


def test_approving_the_same_content_again_is_refused(people: Any, database: Database, tmp_path: Path) -> None:
    approve(database)
    # Same model, different comments and spacing: the content (canonical form) has not changed.
    reworded = write(tmp_path, "reworded.yaml", "# reviewed again by maria\n" + MODEL_TEXT.replace("# Optional", "#"))
    for path, actor in ((EXAMPLE_MODEL, "olga"), (reworded, "maria")):
        with pytest.raises(RefusedError, match="2026.11 is already the approved version"):
            approve(database, path, actor=actor)
    with database.transaction() as session:
        assert [(v.version, v.status) for v in models.model_versions(session)] == [("2026.11", "approved")]


def test_only_an_approved_model_scores(people: Any, database: Database) -> None:
    people.account("ACME")
    with pytest.raises(RefusedError, match="no approved scoring model"):
        score(database)
    with pytest.raises(RefusedError, match="no approved scoring model"):
        with database.transaction() as session:
            models.check_model(session, load_model_file(EXAMPLE_MODEL), NOW)
    assert count(database, ScoreSnapshot) == 0
    approve(database)
    assert score(database).accounts == 1
    assert count(database, ScoreSnapshot) == 1


def test_a_changed_weight_is_one_model_mismatch_until_the_approved_file_is_back(
    portfolio: Database, tmp_path: Path
) -> None:
    live = model_variant(tmp_path, ("name: usage, weight: 30", "name: usage, weight: 25"),
                         ("name: on_time_delivery, weight: 15", "name: on_time_delivery, weight: 20"))
    expected = ["kpi on_time_delivery: weight 15 -> 20", "kpi usage: weight 30 -> 25"]
    for _ in range(2):  # checking again does not open a second deviation
        with portfolio.transaction() as session:
            assert models.check_model(session, load_model_file(live), NOW) == expected
        mismatches = [d for k, d in deviations(portfolio).items() if k[1] == "model_mismatch"]
        assert [(d.account_id, d.status, d.detail) for d in mismatches] == [(None, "open", "; ".join(expected))]
    with portfolio.transaction() as session:
        assert models.check_model(session, load_model_file(EXAMPLE_MODEL), NOW + timedelta(hours=1)) == []
    resolved = deviations(portfolio)[(None, "model_mismatch", f"model {load_model_file(live).digest()[:12]}")]
    assert (resolved.status, resolved.resolved_at) == ("resolved", NOW + timedelta(hours=1))
    assert count(portfolio, Deviation) == 1
    # the live file is only compared: scoring still uses the approved version
    assert score(portfolio).model_version == "2026.11"


# --- scoring the portfolio ---------------------------------------------------------------------------------


def components(snapshot: ScoreSnapshot) -> dict[str, tuple[Any, ...]]:
    return {c["kpi"]: (c["raw"], c["effective_weight"], c["contribution"], c["status"]) for c in snapshot.components}


def test_score_portfolio_gives_hand_checked_scores_buckets_and_deviations(portfolio: Database) -> None:
    run = score(portfolio)
    assert (run.as_of, run.model_version, run.accounts, run.scored, run.provisional) == (NOW, "2026.11", 4, 3, 3)
    assert run.buckets == {"healthy": 1, "neutral": 1, "unhealthy": 1}
    assert run.deviations == {"opened": 9, "resolved": 0, "reopened": 0}
    snaps = snapshots(portfolio)
    assert {ext: (s.score, s.bucket, s.provisional) for ext, s in snaps.items()} == {
        "ACME": (79.25, "neutral", False),  # 24 + 12.5 + 18 + 11.25 + 13.5
        "BETA": (37.5, "unhealthy", True),  # weights 30/15/15 renormalized to 50/25/25: 25 + 7.5 + 5
        "GAMMA": (91.0, "healthy", True),  # usage 70 (source 'product' wins the tie): 21 + 20 + 20 + 15 + 15
        "DELTA": (None, None, True),
    }
    assert components(snaps["ACME"]) == {
        "usage": (80.0, 30.0, 24.0, "ok"),  # the newest of the three usage readings
        "nps": (25.0, 20.0, 12.5, "ok"),
        "csat": (90.0, 20.0, 18.0, "ok"),
        "open_tickets": (5.0, 15.0, 11.25, "ok"),  # inverted scale 20 -> 0
        "on_time_delivery": (90.0, 15.0, 13.5, "ok"),
        "logins": (None, 0.0, 0.0, "missing"),  # tracked (weight 0) and never read here: no deviation for it
    }
    assert components(snaps["BETA"]) == {
        "usage": (50.0, 50.0, 25.0, "stale"),
        "nps": (None, 0.0, 0.0, "missing"),
        "csat": (None, 0.0, 0.0, "missing"),
        "open_tickets": (14.0, 25.0, 7.5, "ok"),
        "on_time_delivery": (20.0, 25.0, 5.0, "ok"),
        "logins": (None, 0.0, 0.0, "missing"),
    }
    with portfolio.transaction() as session:
        approved_id = models.approved_row(session).id  # type: ignore[union-attr]
    assert {s.model_id for s in snaps.values()} == {approved_id}
    found = deviations(portfolio)
    assert {k: d.status for k, d in found.items()} == {
        ("BETA", "stale", "usage"): "open",
        ("BETA", "missing", "nps"): "open",
        ("BETA", "missing", "csat"): "open",
        ("GAMMA", "duplicate", "usage"): "open",
        **{("DELTA", "missing", kpi): "open" for kpi in ("usage", "nps", "csat", "open_tickets", "on_time_delivery")},
    }
    assert "14d old (max_age 7d)" in found[("BETA", "stale", "usage")].detail
    assert "(60 from crm, 70 from product); using 70 from product" in found[("GAMMA", "duplicate", "usage")].detail


def test_scoring_the_same_as_of_twice_replaces_the_snapshots(portfolio: Database) -> None:
    score(portfolio)
    again = score(portfolio, now=NOW + timedelta(hours=2))
    assert again.deviations == {"opened": 0, "resolved": 0, "reopened": 0}
    assert count(portfolio, ScoreSnapshot) == 4
    assert count(portfolio, Deviation) == 9
    assert snapshots(portfolio)["ACME"].score == 79.25
    score(portfolio, NOW + timedelta(days=1))  # another as_of is another snapshot per account
    assert count(portfolio, ScoreSnapshot) == 8


def test_snapshots_keep_the_model_version_they_were_scored_with(portfolio: Database, tmp_path: Path) -> None:
    score(portfolio)
    v2 = approve(portfolio, model_variant(tmp_path, NEW_VERSION,
                                          ("name: usage, weight: 30", "name: usage, weight: 15"),
                                          ("name: on_time_delivery, weight: 15", "name: on_time_delivery, weight: 30")),
                 actor="maria")
    tomorrow = NOW + timedelta(days=1)
    assert score(portfolio, tomorrow).model_version == "2026.12"
    old, new = snapshots(portfolio)["ACME"], snapshots(portfolio, tomorrow)["ACME"]
    assert new.model_id == v2.id != old.model_id
    assert (old.score, new.score) == (79.25, 80.75)  # usage 12 instead of 24, on-time 27 instead of 13.5


def test_scoring_one_account_leaves_the_others_alone(portfolio: Database, tmp_path: Path) -> None:
    score(portfolio)
    fresh = write(tmp_path, "fresh.csv", "account,kpi,value,observed_at,source\n"
                                         "BETA,usage,55,2026-11-24T06:00:00Z,analytics\n"
                                         "ACME,usage,20,2026-11-24T06:00:00Z,analytics\n")
    assert import_file(portfolio, "readings", fresh).created == 2
    with portfolio.transaction() as session:
        run = scoring.score_portfolio(session, NOW, NOW, account_id=account_id(session, "BETA"))
    assert (run.accounts, run.scored, run.deviations) == (1, 1, {"opened": 0, "resolved": 1, "reopened": 0})
    snaps = snapshots(portfolio)
    assert count(portfolio, ScoreSnapshot) == 4
    assert (snaps["BETA"].score, snaps["ACME"].score) == (40.0, 79.25)  # ACME keeps its snapshot until rescored
    found = deviations(portfolio)
    assert found[("BETA", "stale", "usage")].status == "resolved"
    assert found[("DELTA", "missing", "usage")].status == "open"  # out of scope: untouched


# --- deviations --------------------------------------------------------------------------------------------


def stale_beta(database: Database) -> int:
    return deviations(database)[("BETA", "stale", "usage")].id


@pytest.mark.parametrize(
    "actor, reason, until, error, message",
    [
        ("bob", "feed migrating", date(2026, 12, 1), RefusedError, "only a manager or an admin may accept, not bob"),
        ("olga", "feed migrating", date(2026, 12, 1), RefusedError, "only a manager or an admin may accept, not olga"),
        ("maria", "   ", date(2026, 12, 1), InputError, "--reason is empty"),
        ("maria", "feed migrating", NOW.date(), InputError, "--until 2026-11-24: must be in the future"),
        ("maria", "feed migrating", date(2026, 11, 1), InputError, "must be in the future"),
    ],
)
def test_accepting_needs_a_manager_a_reason_and_a_future_date(
    portfolio: Database, actor: str, reason: str, until: date, error: type[Exception], message: str
) -> None:
    score(portfolio)
    deviation_id = stale_beta(portfolio)
    with pytest.raises(error, match=message):
        with portfolio.transaction() as session:
            deviation.accept(session, deviation_id, user(session, actor), reason, until, NOW)
    found = deviations(portfolio)[("BETA", "stale", "usage")]
    assert (found.status, found.accepted_by, found.reason) == ("open", None, None)


def test_an_accepted_deviation_reopens_after_its_date_and_resolves_when_the_cause_goes(
    portfolio: Database, tmp_path: Path
) -> None:
    score(portfolio)
    deviation_id = stale_beta(portfolio)
    with portfolio.transaction() as session:
        deviation.accept(session, deviation_id, user(session, "maria"), " usage feed migrating ", date(2026, 12, 1),
                         NOW)
    # before (and on) the date the cause persists and the acceptance holds
    for day in (date(2026, 11, 30), date(2026, 12, 1)):
        moment = datetime.combine(day, NOW.timetz())
        assert score(portfolio, moment).deviations["reopened"] == 0
        held = deviations(portfolio)[("BETA", "stale", "usage")]
        assert (held.id, held.status, held.accepted_by, held.reason) == (deviation_id, "accepted", "maria",
                                                                          "usage feed migrating")
        assert f"is {(day - date(2026, 11, 10)).days}d old" in held.detail  # the detail follows the rescoring
    # the day after, still stale: it reopens
    after = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    assert score(portfolio, after).deviations["reopened"] == 1
    reopened = deviations(portfolio, open_only=True)[("BETA", "stale", "usage")]
    assert (reopened.id, reopened.status, reopened.accepted_until) == (deviation_id, "open", date(2026, 12, 1))
    # a fresh reading arrives: the next scoring resolves it by itself
    fresh = write(tmp_path, "fresh.csv", "account,kpi,value,observed_at,source\n"
                                         "BETA,usage,55,2026-12-02T06:00:00Z,analytics\n")
    assert import_file(portfolio, "readings", fresh).created == 1
    assert score(portfolio, after + timedelta(hours=1)).deviations["resolved"] == 1
    gone = deviations(portfolio)[("BETA", "stale", "usage")]
    assert (gone.id, gone.status, gone.resolved_at) == (deviation_id, "resolved", after + timedelta(hours=1))
    assert ("BETA", "stale", "usage") not in deviations(portfolio, open_only=True)
    with pytest.raises(RefusedError, match="already resolved"):
        with portfolio.transaction() as session:
            deviation.accept(session, deviation_id, user(session, "maria"), "late", date(2026, 12, 31), after)


def test_backfilling_a_past_date_leaves_current_deviations_alone(portfolio: Database) -> None:
    score(portfolio)
    deviation_id = stale_beta(portfolio)
    with portfolio.transaction() as session:
        deviation.accept(session, deviation_id, user(session, "maria"), "feed migrating", date(2026, 12, 1), NOW)
    before = {k: (d.id, d.status, d.detail) for k, d in deviations(portfolio).items()}
    past = datetime(2026, 11, 12, 9, 0, tzinfo=UTC)  # BETA's usage was 2 days old then
    backfill = score(portfolio, past, now=NOW)
    assert (backfill.accounts, backfill.scored) == (4, 3)
    assert snapshots(portfolio, past)["BETA"].provisional is True  # surveys were missing then too
    assert {k: (d.id, d.status, d.detail) for k, d in deviations(portfolio).items()} == before
    score(portfolio, NOW, now=NOW + timedelta(minutes=5))
    current = deviations(portfolio, open_only=True)[("BETA", "stale", "usage")]
    assert (current.id, current.status, current.accepted_by) == (deviation_id, "accepted", "maria")


# --- imports -----------------------------------------------------------------------------------------------

READINGS_HEADER = "account,kpi,value,observed_at"
SURVEYS_HEADER = "account,kind,score,max_score,responded_at"
GOOD_READING = "ACME,usage,50,2026-11-20T06:00:00Z"
GOOD_SURVEY = "ACME,csat,4,5,2026-11-20T12:00:00Z"


@pytest.mark.parametrize(
    "kind, header, good, bad, column, message",
    [
        ("readings", READINGS_HEADER, GOOD_READING, "NOPE,usage,50,2026-11-20", "account", "unknown account 'NOPE'"),
        ("readings", READINGS_HEADER, GOOD_READING, "ACME,usage,lots,2026-11-20", "value", "'lots' is not a number"),
        ("readings", READINGS_HEADER, GOOD_READING, "ACME,usage,50,2026-13-40", "observed_at",
         "'2026-13-40' is not a date or date-time (ISO 8601)"),
        ("readings", READINGS_HEADER, GOOD_READING, "ACME,us-age,50,2026-11-20", "kpi",
         "'us-age' is not a KPI name (letters, digits, _)"),
        ("surveys", SURVEYS_HEADER, GOOD_SURVEY, "ACME,csat,6,5,2026-11-20", "score", "6 is not within 0..5"),
        ("surveys", SURVEYS_HEADER, GOOD_SURVEY, "ACME,nps,11,,2026-11-20", "score", "11 is not within 0..10"),
        ("surveys", SURVEYS_HEADER, GOOD_SURVEY, "ACME,csat,4,,2026-11-20", "max_score",
         "value is required for csat responses"),
        ("surveys", SURVEYS_HEADER, GOOD_SURVEY, "NOPE,csat,4,5,2026-11-20", "account", "unknown account 'NOPE'"),
        ("surveys", SURVEYS_HEADER, GOOD_SURVEY, "ACME,csat,4,5,yesterday", "responded_at",
         "'yesterday' is not a date or date-time (ISO 8601)"),
        ("issues", "external_id,account,kind,opened_at", "X-1,ACME,ticket,2026-11-20", "X-2,ACME,outage,2026-11-20",
         "kind", "'outage' is not one of complaint, billing, blocker, ticket"),
        ("issues", "external_id,account,kind,status,opened_at", "X-1,ACME,ticket,open,2026-11-20",
         "X-2,ACME,ticket,closed,2026-11-20", "closed_at", "a closed issue needs closed_at"),
        ("issues", "external_id,account,kind,status,opened_at,closed_at", "X-1,ACME,ticket,open,2026-11-20,",
         "X-2,ACME,ticket,closed,2026-11-20,2026-11-19", "closed_at", "before opened_at"),
        ("issues", "external_id,account,kind,opened_at", "X-1,ACME,ticket,2026-11-20", "X-1,ACME,billing,2026-11-21",
         "external_id", "'X-1' appears twice in the file"),
    ],
)
def test_a_bad_row_names_file_row_and_column_and_nothing_is_stored(
    portfolio: Database, tmp_path: Path, kind: str, header: str, good: str, bad: str, column: str, message: str
) -> None:
    path = write(tmp_path, f"bad-{kind}.csv", f"{header}\n{good}\n{bad}\n")
    tables = (KpiReading, SurveyResponse, Issue)
    before = [count(portfolio, table) for table in tables]
    with pytest.raises(InputError) as caught:
        import_file(portfolio, kind, path)
    assert str(caught.value) == f"{path}: row 3, column {column!r}: {message}"
    assert [count(portfolio, table) for table in tables] == before
    # the good row alone goes in: nothing of the failed attempt was left behind
    write(tmp_path, f"bad-{kind}.csv", f"{header}\n{good}\n")
    assert import_file(portfolio, kind, path).created == 1


def test_a_survey_with_max_score_zero_is_refused(portfolio: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "zero.csv", "account,kind,score,max_score,responded_at\nACME,nps,4,0,2026-11-20\n")
    with pytest.raises(InputError, match="row 2, column 'max_score'"):
        import_file(portfolio, "surveys", path)


def test_reimporting_readings_skips_identical_rows_and_never_overwrites(portfolio: Database, tmp_path: Path) -> None:
    same = import_file(portfolio, "readings", write(tmp_path, "again.csv", READINGS))
    assert (same.created, same.updated, same.skipped) == (0, 0, 12)
    # the same instant written with another offset is the same reading; a different value is a new one
    changed = write(tmp_path, "changed.csv", "account,kpi,value,observed_at,source\n"
                                             "BETA,open_tickets,14,2026-11-20T07:00:00+01:00,helpdesk\n"
                                             "BETA,on_time_delivery,60,2026-11-20T06:00:00Z,pmo\n")
    result = import_file(portfolio, "readings", changed)
    assert (result.created, result.skipped) == (1, 1)
    with portfolio.transaction() as session:
        values = session.scalars(select(KpiReading.value).where(
            KpiReading.account_id == account_id(session, "BETA"), KpiReading.kpi == "on_time_delivery"))
        assert sorted(values) == [20.0, 60.0]
    score(portfolio)
    assert "20 from pmo, 60 from pmo" in deviations(portfolio)[("BETA", "duplicate", "on_time_delivery")].detail


def test_reimporting_issues_updates_them_by_external_id(portfolio: Database, tmp_path: Path) -> None:
    first = import_file(portfolio, "issues", write(tmp_path, "issues.csv", ISSUES))
    assert (first.created, first.updated) == (2, 0)
    later = ISSUES.replace("CS-1,ACME,complaint,high,open,2026-11-02,,", "CS-1,ACME,complaint,high,closed,2026-11-02,"
                           "2026-11-20T10:00:00Z,") + "BL-3,GAMMA,billing,medium,open,2026-11-21,,Disputed invoice\n"
    second = import_file(portfolio, "issues", write(tmp_path, "issues2.csv", later))
    assert (second.created, second.updated) == (1, 2)
    with portfolio.transaction() as session:
        stored = {i.external_id: (i.status, i.closed_at, i.title) for i in session.scalars(select(Issue))}
    assert stored == {
        "CS-1": ("closed", datetime(2026, 11, 20, 10, 0, tzinfo=UTC), "Exports time out"),
        "TK-2": ("open", None, "Slow dashboard"),
        "BL-3": ("open", None, "Disputed invoice"),
    }


# --- reviews and trends ------------------------------------------------------------------------------------


def test_a_new_review_takes_its_baseline_from_the_latest_snapshot(portfolio: Database) -> None:
    score(portfolio)
    score(portfolio, datetime(2026, 10, 20, 9, 0, tzinfo=UTC), now=NOW)  # a backfill is older, not newer
    with portfolio.transaction() as session:
        review = reviews.new_review(session, "ACME", "bob", NOW, timedelta(days=14))
        assert (review.baseline_score, review.baseline_bucket) == (79.25, "neutral")
        assert reviews.review_dict(review)["baseline"] == {"score": 79.25, "bucket": "neutral"}
        beta = reviews.new_review(session, "BETA", "bob", NOW, timedelta(days=14))
        assert (beta.baseline_score, beta.baseline_bucket) == (37.5, "unhealthy")


def test_account_trend_shows_the_drop_and_the_kpi_that_caused_it(portfolio: Database) -> None:
    score(portfolio, datetime(2026, 10, 20, 9, 0, tzinfo=UTC), now=NOW)  # usage 90 then: 82.25, healthy
    score(portfolio)
    with portfolio.transaction() as session:
        acme = account_id(session, "ACME")
        trend = account_views.account_trend(session, acme, NOW)
        latest = scoring.latest_buckets(session)
        delta = account_views.account_trend(session, account_id(session, "DELTA"), NOW)
    assert trend["history"] == [
        {"as_of": "2026-10-20T09:00:00+00:00", "score": 82.25, "bucket": "healthy", "provisional": False},
        {"as_of": "2026-11-24T09:00:00+00:00", "score": 79.25, "bucket": "neutral", "provisional": False},
    ]
    assert trend["sparkline"] == "▇▇"
    assert (trend["change_30d"], trend["direction"]) == (-3.0, "down")
    assert trend["contribution_changes"] == [("usage", -3.0)]
    assert latest[acme] == (79.25, "neutral")
    assert (delta["sparkline"], delta["change_30d"], delta["contribution_changes"]) == ("  ", None, [])


def test_reimporting_surveys_adds_only_the_new_responses_and_scores_stay_put(portfolio: Database, tmp_path: Path):
    before = snapshots_after_scoring(portfolio)
    again = import_file(portfolio, "surveys", write(tmp_path, "again.csv", SURVEYS))
    assert (again.created, again.skipped) == (0, 8)
    assert snapshots_after_scoring(portfolio) == before  # NPS and CSAT not counted twice
    # A longer export of the same surveys: only its two new rows go in, one of them identical to another.
    longer = SURVEYS + "GAMMA,nps,10,10,2026-11-01T12:00:00Z\nGAMMA,nps,0,10,2026-11-02T12:00:00Z\n"
    grown = import_file(portfolio, "surveys", write(tmp_path, "longer.csv", longer))
    assert (grown.created, grown.skipped) == (2, 8)


def snapshots_after_scoring(database: Database) -> dict[str, float | None]:
    score(database)
    return {name: snap.score for name, snap in snapshots(database).items()}


def test_accepting_one_model_mismatch_does_not_accept_a_later_different_one(
    portfolio: Database, tmp_path: Path
) -> None:
    first = model_variant(tmp_path, ("name: usage, weight: 30", "name: usage, weight: 25"),
                          ("name: on_time_delivery, weight: 15", "name: on_time_delivery, weight: 20"))
    with portfolio.transaction() as session:
        models.check_model(session, load_model_file(first), NOW)
        (accepted,) = [d for d in session.scalars(select(Deviation)) if d.kind == "model_mismatch"]
        deviation.accept(session, accepted.id, user(session, "maria"), "trialling new weights", date(2026, 12, 31), NOW)
    second = model_variant(tmp_path, ("name: usage, weight: 30", "name: usage, weight: 20"),
                           ("name: on_time_delivery, weight: 15", "name: on_time_delivery, weight: 25"), name="b.yaml")
    with portfolio.transaction() as session:
        models.check_model(session, load_model_file(second), NOW + timedelta(days=1))
    states = sorted(d.status for k, d in deviations(portfolio).items() if k[1] == "model_mismatch")
    assert states == ["open", "resolved"]  # the new content is a new, open finding


def test_a_version_label_already_approved_with_other_content_is_refused(
    people: Any, database: Database, tmp_path: Path
) -> None:
    approve(database)
    same_label = model_variant(tmp_path, ("name: usage, weight: 30", "name: usage, weight: 25"),
                               ("name: on_time_delivery, weight: 15", "name: on_time_delivery, weight: 20"))
    with pytest.raises(InputError, match="version '2026.11' was already approved with other content"):
        approve(database, same_label)
    with database.transaction() as session:
        assert [(v.version, v.status) for v in models.model_versions(session)] == [("2026.11", "approved")]
