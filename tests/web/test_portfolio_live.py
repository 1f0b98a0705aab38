"""`/portfolio` live: summary figures, filters, search, sort and paging done in SQL, checked against figures
worked out by hand from a small book, and the same filters in `/api/v1/portfolio/...`.

The book (now = 2026-11-24, the example model: unhealthy < 40 <= neutral < 80 <= healthy; the default priority
matrix: severity high is P2, one level up per criterion: renewal within 90 days, ARR >= 100,000, >= 3 open issues):

| account | owner | segment    | ARR     | latest score      | at risk because        | priority              |
|---------|-------|------------|---------|-------------------|------------------------|-----------------------|
| ACME    | bob   | enterprise | 120,000 | 35 (was 90; 95 tomorrow) | unhealthy       | P1 (renewal in 52 d, ARR) |
| BETA    | bob   | enterprise |  50,000 | 70 neutral        | open P3 escalation     | P3 (the escalation's) |
| GAMMA   | maria | smb        |  20,000 | 20 unhealthy      | unhealthy              | P2                    |
| DELTA   | maria | smb        | 300,000 | 90 healthy        | -                      | -                     |
| EPSILON | bob   | smb        |  10,000 | 10 unhealthy      | unhealthy              | P1 (3 open complaints) |
| ZETA    | bob   | smb        |       - | none (unscored)   | -                      | -                     |
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, Issue, ScoreSnapshot, User
from pulsecheck.storage.paging import PageRequest
from pulsecheck.workflow import escalations
from pulsecheck.workflow.models import approve_model
from tests.conftest import Factory
from tests.web import api_helpers
from tests.web.api_helpers import Api
from tests.web.conftest import Client

MODEL = Path(__file__).resolve().parents[2] / "examples" / "scoring.yaml"
ROW = re.compile(r'<tr><td><a href="/accounts/[^"]+">([^<]+)</a>')
api, token = api_helpers.api, api_helpers.token  # the fixtures


@pytest.fixture
def book(team: Factory, database: Database, now: datetime) -> Factory:
    fill_book(team, database, now)
    return team


def fill_book(team: Factory, database: Database, now: datetime) -> None:
    """The accounts of the table above, beside the team's ACME."""
    team.account("BETA", owner="bob", name="Beta Inc", segment="enterprise", arr=50000.0)
    team.account("GAMMA", owner="maria", name="Gamma Ltd", segment="smb", arr=20000.0,
                 renewal_date=date(2027, 6, 1))
    team.account("DELTA", owner="maria", name="Delta Co", segment="smb", arr=300000.0)
    team.account("EPSILON", owner="bob", name="Acme Labs", segment="smb", arr=10000.0)
    team.account("ZETA", owner="bob", name="Zeta AG", segment="smb")
    with database.transaction() as session:
        olga = session.scalars(select(User).where(User.name == "olga")).one()
        model_id = approve_model(session, MODEL, olga, now - timedelta(days=60)).id
        ids: dict[str, int] = {ext: pk for ext, pk in session.execute(select(Account.external_id, Account.id))}
        acme = session.get(Account, ids["ACME"])
        assert acme is not None
        acme.name = "Acme Corp"
        snapshots = [("ACME", -30, 90.0, "healthy"), ("ACME", 0, 35.0, "unhealthy"), ("ACME", 1, 95.0, "healthy"),
                     ("BETA", -1, 70.0, "neutral"), ("GAMMA", -1, 20.0, "unhealthy"),
                     ("DELTA", -1, 90.0, "healthy"), ("EPSILON", -1, 10.0, "unhealthy")]
        for external_id, days, score, bucket in snapshots:
            session.add(ScoreSnapshot(account_id=ids[external_id], as_of=now + timedelta(days=days), score=score,
                                      bucket=bucket, model_id=model_id, components=[]))
        for n in range(3):  # three open complaints, and a closed one that no longer counts
            session.add(Issue(external_id=f"I{n}", account_id=ids["EPSILON"], kind="complaint", severity="high",
                              status="open", opened_at=now - timedelta(days=5)))
        session.add(Issue(external_id="I9", account_id=ids["GAMMA"], kind="complaint", severity="high",
                          status="closed", opened_at=now - timedelta(days=9), closed_at=now - timedelta(days=1)))
        escalations.create(session, ids["BETA"], "drop", "high", "P3", "usage fell", "bob", None, now)


def table(text: str) -> list[str]:
    """The account names of the at-risk table, in order."""
    part = text.split('<table class="at-risk">', 1)[1].split("</table>", 1)[0]
    return ROW.findall(part)


def test_the_summary_counts_the_latest_snapshot_of_each_account(book: Factory, client: Client) -> None:
    text = client("bob").get("/portfolio").text
    assert "6 accounts, 1 unscored" in text
    assert "unhealthy: <strong>3</strong>" in text and "neutral: <strong>1</strong>" in text
    assert "healthy: <strong>1</strong>" in text
    assert '<strong class="at-risk">4</strong>' in text  # ACME, BETA, GAMMA, EPSILON
    assert '<strong class="arr-at-risk">$200,000</strong>' in text  # 120,000 + 50,000 + 20,000 + 10,000
    assert "; P1: 2; P2: 1; P3: 1." in text
    assert "Open escalations: 1." in text


def test_the_table_defaults_to_most_urgent_first(book: Factory, client: Client) -> None:
    # P1 by lower score first (EPSILON 10, ACME 35), then GAMMA (P2), BETA (P3)
    assert table(client("bob").get("/portfolio").text) == ["Acme Labs", "Acme Corp", "Gamma Ltd", "Beta Inc"]


@pytest.mark.parametrize(("query", "expected"), [
    ("segment=enterprise", ["Acme Corp", "Beta Inc"]),
    ("owner=maria", ["Gamma Ltd"]),
    ("bucket=unhealthy", ["Acme Labs", "Acme Corp", "Gamma Ltd"]),
    ("priority=P1", ["Acme Labs", "Acme Corp"]),
    ("priority=P3", ["Beta Inc"]),
    ("q=ACME", ["Acme Labs", "Acme Corp"]),
    ("q=epsilon", ["Acme Labs"]),  # the external id too
    ("q=_", []),  # a LIKE wildcard is searched as itself (no name or id holds one)
    ("segment=smb&priority=P1&q=labs", ["Acme Labs"]),
    ("sort=name", ["Acme Corp", "Acme Labs", "Beta Inc", "Gamma Ltd"]),
    ("sort=-name", ["Gamma Ltd", "Beta Inc", "Acme Labs", "Acme Corp"]),
    ("sort=score", ["Acme Labs", "Gamma Ltd", "Acme Corp", "Beta Inc"]),
    ("sort=-score", ["Beta Inc", "Acme Corp", "Gamma Ltd", "Acme Labs"]),
    ("sort=arr", ["Acme Corp", "Beta Inc", "Gamma Ltd", "Acme Labs"]),
    ("sort=owner", ["Acme Corp", "Beta Inc", "Acme Labs", "Gamma Ltd"]),  # bob's by id, then maria's
    ("sort=renewal", ["Acme Corp", "Gamma Ltd", "Beta Inc", "Acme Labs"]),  # no renewal date last (by id)
])
def test_filters_search_and_sort(book: Factory, client: Client, query: str, expected: list[str]) -> None:
    page = client("bob").get(f"/portfolio?{query}")
    assert page.status_code == 200
    assert table(page.text) == expected
    assert f'(<span class="total">{len(expected)}</span>)' in page.text


def test_the_summary_follows_segment_and_owner(book: Factory, client: Client) -> None:
    text = client("bob").get("/portfolio?owner=maria").text
    assert "2 accounts, 0 unscored" in text and '<strong class="at-risk">1</strong>' in text
    assert '<strong class="arr-at-risk">$20,000</strong>' in text
    text = client("bob").get("/portfolio?segment=enterprise&bucket=unhealthy").text
    assert "2 accounts, 0 unscored" in text  # the bucket filter narrows the table only
    assert table(text) == ["Acme Corp"]


def test_the_table_pages(book: Factory, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from pulsecheck.web.pages import portfolio

    monkeypatch.setattr(portfolio, "PAGE_SIZE", 3)
    bob = client("bob")
    first = bob.get("/portfolio?sort=name").text
    assert table(first) == ["Acme Corp", "Acme Labs", "Beta Inc"] and "page 1 of 2" in first
    assert "sort=name&amp;page=2" in first
    second = bob.get("/portfolio?sort=name&page=2").text
    assert table(second) == ["Gamma Ltd"] and "page 2 of 2" in second
    assert table(bob.get("/portfolio?sort=name&page=3").text) == []


def test_bad_filters_are_refused_as_bad_input(book: Factory, client: Client) -> None:
    bob = client("bob")
    for query in ("segment=nope", "owner=nobody", "priority=P9", "sort=colour", "page=0"):
        assert bob.get(f"/portfolio?{query}").status_code == 422, query


def test_the_rows_are_the_reports_at_risk_rows(book: Factory, database: Database, now: datetime) -> None:
    """The SQL flag and priority agree with `at_risk`'s assessment of every account."""
    from pulsecheck.rules.priority import PriorityMatrix
    from pulsecheck.workflow.at_risk import at_risk
    from pulsecheck.workflow.portfolio_live import Filters, at_risk_page

    with database.transaction() as session:
        whole = at_risk(session, now, PriorityMatrix())
        page = at_risk_page(session, now, PriorityMatrix(), Filters(), PageRequest(2, 1))
        rest = at_risk_page(session, now, PriorityMatrix(), Filters(), PageRequest())
    assert [row.risk for row in rest.items] == whole
    assert [row.risk.external_id for row in page.items] == ["ACME", "GAMMA"] and page.total == 4
    assert [row.risk.priority for row in rest.items] == ["P1", "P1", "P2", "P3"]
    assert "3 open issues" in rest.items[0].risk.reasons


def test_the_api_lists_the_same_rows_in_the_paged_shape(book: Factory, api: Api) -> None:
    bob = api("bob", "read")
    body: dict[str, Any] = bob.get("/api/v1/portfolio/at-risk?segment=smb&sort=-score&limit=1&offset=1").json()
    assert body["total"] == 2 and body["offset"] == 1 and body["limit"] == 1  # GAMMA (20), EPSILON (10)
    assert [item["account"] for item in body["items"]] == ["EPSILON"]
    assert body["items"][0]["arr"] == 10000.0 and body["items"][0]["priority"] == "P1"
    summary = bob.get("/api/v1/portfolio/summary?owner=bob").json()
    assert summary["accounts"] == 4 and summary["at_risk"] == 3 and summary["arr_at_risk"] == 180000.0
    assert summary["at_risk_by_priority"] == {"P1": 2, "P3": 1}
    assert bob.get("/api/v1/portfolio/at-risk?priority=P7").status_code == 422
    assert api().get("/api/v1/portfolio/at-risk").status_code == 401


def test_the_sql_agrees_with_at_risk_on_postgresql(pg_database: Database, now: datetime) -> None:
    """PostgreSQL takes another path to the latest snapshot (DISTINCT ON): the same rows, order and figures."""
    from pulsecheck.rules.priority import PriorityMatrix
    from pulsecheck.workflow.at_risk import at_risk
    from pulsecheck.workflow.portfolio_live import Filters, at_risk_page, summary

    factory = Factory(pg_database, now)
    factory.team()
    fill_book(factory, pg_database, now)
    with pg_database.transaction() as session:
        whole = at_risk(session, now, PriorityMatrix())
        figures = summary(session, now, PriorityMatrix(), Filters())
        rows = at_risk_page(session, now, PriorityMatrix(), Filters(), PageRequest(), figures)
        searched = at_risk_page(session, now, PriorityMatrix(), Filters(q="acme", priority="P1"), PageRequest())
    assert [row.risk for row in rows.items] == whole and rows.total == 4
    assert [row.risk.external_id for row in rows.items] == ["EPSILON", "ACME", "GAMMA", "BETA"]
    assert (figures.accounts, figures.unscored, figures.at_risk, figures.arr_at_risk) == (6, 1, 4, 200000.0)
    assert {b.name: b.count for b in figures.buckets} == {"unhealthy": 3, "neutral": 1, "healthy": 1}
    assert [row.risk.external_id for row in searched.items] == ["EPSILON", "ACME"] and searched.total == 2


VIEWS = [  # (filters, sort, offset, limit): what the page asks for
    ({}, None, 0, 50), ({"segment": "smb"}, "-score", 1, 1), ({"owner": "bob", "bucket": "unhealthy"}, "name", 0, 2),
    ({"priority": "P1"}, "-arr", 0, 50), ({"q": "acme"}, "owner", 0, 50), ({}, "renewal", 2, 50),
    ({}, "-urgency", 0, 3), ({"bucket": "neutral"}, "priority", 0, 50), ({"segment": "enterprise"}, "-name", 5, 50),
]


def _same_view(database: Database, now: datetime) -> None:
    """The page's one-pass view gives the figures and rows that `summary` and `at_risk_page` give apart."""
    from pulsecheck.rules.priority import PriorityMatrix
    from pulsecheck.workflow.portfolio_live import Filters, at_risk_page, portfolio_view, summary

    for chosen, sort, offset, limit in VIEWS:
        filters, request = Filters(**chosen), PageRequest(limit, offset, sort)
        with database.transaction() as session:
            figures, rows = portfolio_view(session, now, PriorityMatrix(), filters, request)
            expected = at_risk_page(session, now, PriorityMatrix(), filters, request)
            expected_figures = summary(session, now, PriorityMatrix(), filters)
        assert figures == expected_figures, chosen
        assert (rows.items, rows.total, rows.offset, rows.limit) == (
            expected.items, expected.total, expected.offset, expected.limit), (chosen, sort)
    with database.transaction() as session:
        figures, rows = portfolio_view(session, now, PriorityMatrix(), Filters(), PageRequest(2, 1))
    assert [row.risk.external_id for row in rows.items] == ["ACME", "GAMMA"] and rows.total == 4
    assert (figures.accounts, figures.unscored, figures.at_risk, figures.arr_at_risk) == (6, 1, 4, 200000.0)
    # two days on, no snapshot is newer: the latest come from `latest_snapshots` (ACME's 95 of tomorrow)
    from pulsecheck.workflow.at_risk import at_risk

    later = now + timedelta(days=2)
    with database.transaction() as session:
        figures, rows = portfolio_view(session, later, PriorityMatrix(), Filters(), PageRequest())
        whole = at_risk(session, later, PriorityMatrix())
    assert [row.risk for row in rows.items] == whole
    assert [row.risk.external_id for row in rows.items] == ["EPSILON", "GAMMA", "BETA"] and rows.total == 3
    assert {b.name: b.count for b in figures.buckets} == {"unhealthy": 2, "neutral": 1, "healthy": 2}
    assert (figures.accounts, figures.unscored, figures.at_risk, figures.arr_at_risk) == (6, 1, 3, 80000.0)


def test_the_one_pass_view_agrees_with_the_two_passes(book: Factory, database: Database, now: datetime) -> None:
    _same_view(database, now)


def test_the_one_pass_view_agrees_with_the_two_passes_on_postgresql(pg_database: Database, now: datetime) -> None:
    factory = Factory(pg_database, now)
    factory.team()
    fill_book(factory, pg_database, now)
    _same_view(pg_database, now)


# A worker keeps each scope's book on PostgreSQL (`book_changes`, migration 0023): what another connection commits
# shows on the next request, whenever it began, and the time-dependent parts move on with the clock.

def _pg_book(pg_database: Database, now: datetime) -> None:
    factory = Factory(pg_database, now)
    factory.team()
    fill_book(factory, pg_database, now)


def _view(database: Database, when: datetime, **chosen: Any) -> tuple[Any, list[str]]:
    """The page's figures and its table's external ids, as a request at `when` reads them."""
    from pulsecheck.rules.priority import PriorityMatrix
    from pulsecheck.workflow.portfolio_live import Filters, portfolio_view

    with database.transaction() as session:
        figures, rows = portfolio_view(session, when, PriorityMatrix(), Filters(**chosen), PageRequest(50))
    return figures, [row.risk.external_id for row in rows.items]


def _ids(database: Database) -> dict[str, int]:
    with database.transaction() as session:
        return {ext: pk for ext, pk in session.execute(select(Account.external_id, Account.id))}


def test_what_another_connection_commits_shows_on_the_next_request_on_postgresql(
    pg_database: Database, now: datetime
) -> None:
    from sqlalchemy import update

    _pg_book(pg_database, now)
    ids = _ids(pg_database)
    figures, rows = _view(pg_database, now)
    assert rows == ["EPSILON", "ACME", "GAMMA", "BETA"] and figures.at_risk == 4
    with pg_database.transaction() as session:  # another transaction escalates DELTA (healthy) at P1
        escalations.create(session, ids["DELTA"], "drop", "high", "P1", "usage fell", "maria", None, now)
    figures, rows = _view(pg_database, now)
    assert rows == ["EPSILON", "ACME", "DELTA", "GAMMA", "BETA"]  # P1 by score: 10, 35, 90
    assert (figures.at_risk, figures.arr_at_risk, figures.open_escalations) == (5, 500000.0, 2)
    with pg_database.engine.begin() as conn:  # a plain connection: GAMMA scored healthy an hour ago
        conn.execute(ScoreSnapshot.__table__.insert().values(
            account_id=ids["GAMMA"], as_of=now - timedelta(hours=1), score=85.0, bucket="healthy",
            model_id=1, components=[], provisional=False))
        conn.execute(update(Account).where(Account.external_id == "BETA").values(name="Renamed Beta"))
    figures, rows = _view(pg_database, now)
    assert rows == ["EPSILON", "ACME", "DELTA", "BETA"] and figures.at_risk == 4
    assert {b.name: b.count for b in figures.buckets} == {"unhealthy": 2, "neutral": 1, "healthy": 2}
    assert _view(pg_database, now, q="renamed")[1] == ["BETA"]


def test_a_transaction_that_commits_after_the_book_was_kept_still_shows_on_postgresql(
    pg_database: Database, now: datetime
) -> None:
    """A writer that began before the book was read and commits after it (its id lower than later writers')."""
    _pg_book(pg_database, now)
    ids = _ids(pg_database)
    with pg_database.engine.connect() as conn:
        late = conn.begin()
        conn.execute(ScoreSnapshot.__table__.insert().values(
            account_id=ids["DELTA"], as_of=now - timedelta(hours=1), score=5.0, bucket="unhealthy",
            model_id=1, components=[], provisional=False))
        assert _view(pg_database, now)[1] == ["EPSILON", "ACME", "GAMMA", "BETA"]  # not committed yet
        with pg_database.transaction() as session:  # a later writer commits first
            escalations.create(session, ids["ZETA"], "drop", "high", "P3", "no usage", "bob", None, now)
        assert _view(pg_database, now)[1] == ["EPSILON", "ACME", "GAMMA", "BETA", "ZETA"]
        late.commit()
    # DELTA unhealthy (5) is P1 by its ARR; ZETA (P3, unscored) after BETA (P3, 70)
    assert _view(pg_database, now)[1] == ["DELTA", "EPSILON", "ACME", "GAMMA", "BETA", "ZETA"]


def test_the_kept_book_moves_on_with_the_clock_on_postgresql(pg_database: Database, now: datetime) -> None:
    """No write between the requests: an escalation opening and an issue closing later, the next day."""
    from sqlalchemy import update

    _pg_book(pg_database, now)
    ids = _ids(pg_database)
    with pg_database.transaction() as session:
        escalations.create(session, ids["DELTA"], "drop", "high", "P3", "later", "bob", None, now + timedelta(hours=2))
        session.execute(update(Issue).where(Issue.external_id == "I0").values(closed_at=now + timedelta(hours=3)))
    assert _view(pg_database, now)[1] == ["EPSILON", "ACME", "GAMMA", "BETA"]
    assert _view(pg_database, now + timedelta(hours=2, minutes=30))[1] == ["EPSILON", "ACME", "GAMMA", "BETA", "DELTA"]
    # EPSILON's third open complaint closes: P2 now, before GAMMA (P2, 20) by its lower score (10)
    assert _view(pg_database, now + timedelta(hours=4))[1] == ["ACME", "EPSILON", "GAMMA", "BETA", "DELTA"]


def test_a_change_whose_row_was_pruned_still_shows_on_postgresql(pg_database: Database, now: datetime) -> None:
    from pulsecheck.storage import changes

    _pg_book(pg_database, now)
    ids = _ids(pg_database)
    assert _view(pg_database, now)[1] == ["EPSILON", "ACME", "GAMMA", "BETA"]
    with pg_database.transaction() as session:
        kept = changes.mark(session)
        assert not changes.changed_since(session, kept)
    with pg_database.transaction() as session:
        escalations.create(session, ids["ZETA"], "drop", "high", "P3", "no usage", "bob", None, now)
    with pg_database.transaction() as session:
        assert changes.prune(session, keep=0) > 0  # the escalation's row among them
    with pg_database.transaction() as session:
        assert changes.changed_since(session, kept)  # the row is gone, the pruned mark says so
        assert not changes.changed_since(session, changes.mark(session))
    assert _view(pg_database, now)[1] == ["EPSILON", "ACME", "GAMMA", "BETA", "ZETA"]


def test_the_kept_book_gives_what_the_sql_gives_on_postgresql(
    pg_database: Database, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every sort both ways and the filters, from the kept book and from SQL (changes not tracked)."""
    from pulsecheck.rules.priority import PriorityMatrix
    from pulsecheck.storage import changes
    from pulsecheck.workflow.portfolio_live import SORTS, Filters, at_risk_page, portfolio_view, summary

    _pg_book(pg_database, now)
    views = [(chosen, sort, offset, limit) for chosen, sort, offset, limit in VIEWS]
    views += [({}, f"{way}{sort}", 0, 50) for sort in SORTS for way in ("", "-")]
    views += [({"segment": "smb"}, f"{way}{sort}", 1, 2) for sort in SORTS for way in ("", "-")]

    def read(kept: bool) -> list[Any]:
        monkeypatch.setattr(changes, "tracked", lambda session: kept)
        found = []
        for chosen, sort, offset, limit in views:
            filters, request = Filters(**chosen), PageRequest(limit, offset, sort)
            with pg_database.transaction() as session:
                figures, rows = portfolio_view(session, now, PriorityMatrix(), filters, request)
                page = at_risk_page(session, now, PriorityMatrix(), filters, request)
                found.append((figures, summary(session, now, PriorityMatrix(), filters), rows, page))
        return found

    assert read(True) == read(False)


def test_the_kept_book_reasons_follow_new_escalations_and_issues_on_postgresql(
    pg_database: Database, now: datetime
) -> None:
    """The rows shown from a kept book carry the reasons, priority and escalations of the moment, and a later
    escalation or issue shows on the next request."""
    from pulsecheck.rules.priority import PriorityMatrix
    from pulsecheck.workflow.portfolio_live import Filters, portfolio_view

    def epsilon() -> tuple[list[str], Any]:
        with pg_database.transaction() as session:
            _, rows = portfolio_view(session, now, PriorityMatrix(), Filters(), PageRequest(50))
        found = {row.risk.external_id: row.risk for row in rows.items}
        return [row.risk.external_id for row in rows.items], found["EPSILON"]

    _pg_book(pg_database, now)
    ids = _ids(pg_database)
    for _ in range(2):  # the first request keeps the book, the second reads it
        order, risk = epsilon()
        assert order == ["EPSILON", "ACME", "GAMMA", "BETA"]
        assert risk.reasons == ["bucket unhealthy (score 10.0)", "3 open issues"]  # 3 complaints: P2 raised to P1
        assert (risk.priority, risk.open_escalations, risk.owner, risk.segment) == ("P1", 0, "bob", "smb")
    with pg_database.transaction() as session:
        escalations.create(session, ids["EPSILON"], "drop", "high", "P2", "late invoices", "bob", None, now)
        session.add(Issue(external_id="I4", account_id=ids["EPSILON"], kind="billing", severity="high",
                          status="open", opened_at=now - timedelta(days=1)))
    order, risk = epsilon()
    assert order == ["ACME", "EPSILON", "GAMMA", "BETA"]  # P1 ACME; then P2 by score: EPSILON 10, GAMMA 20
    assert risk.reasons == ["bucket unhealthy (score 10.0)", "escalation P2: late invoices", "4 open issues"]
    assert (risk.priority, risk.open_escalations) == ("P2", 1)
