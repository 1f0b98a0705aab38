"""Every list pages and filters the same way (--limit, --offset, --sort, --owner, --mine, --json with the total);
escalations are acknowledged and resolved in bulk; `accounts reassign` moves a leaving owner's book."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from pulsecheck.storage.models import Account, Escalation, Review, ReviewEvent
from tests.conftest import NOW, as_json, error, ok, page_items


@pytest.fixture
def book(factory: Any, database: Any) -> None:
    """maria manages bob and carol; bob owns A01..A07 (arr 1000 x n), carol owns C01 and C02; an open escalation
    on each account (P1 on A01..A03), owned by the account's owner; bob reviews a draft of A01 and carol one of
    C01 that bob (also a manager) approves."""
    factory.user("maria", "manager")
    factory.user("bob", "reviewer", "manager", manager="maria")
    factory.user("carol", "reviewer", manager="maria")
    factory.user("erin", "manager")
    factory.user("dave", "reviewer", manager="erin")
    for n in range(1, 8):
        factory.account(f"A{n:02d}", owner="bob", manager="maria", arr=1000.0 * n, segment="smb" if n % 2 else "ent")
    for n in (1, 2):
        factory.account(f"C{n:02d}", owner="carol", manager="maria", arr=500.0)
    factory.review("A01", actor="bob")
    with database.transaction() as session:
        for account in session.scalars(select(Account).order_by(Account.external_id)):
            session.add(Escalation(
                account_id=account.id, rule_id="drop" if account.external_id != "A07" else "stale",
                severity="high", priority="P1" if account.external_id <= "A03" else "P2", reason="score fell",
                owner=account.owner.name if account.owner else None, level=0, opened_at=NOW,
                due_at=NOW + timedelta(days=1 if account.external_id <= "A02" else 5), status="open",
                dedupe_key=f"{account.id}:drop",
            ))
    with database.transaction() as session:
        from pulsecheck.workflow.reviews import new_review

        new_review(session, "C01", "carol", NOW, timedelta(days=14), approver="bob")


def test_limit_offset_and_the_total(book: None, run: Any) -> None:
    page = as_json(run("accounts", "list", "--json", "--limit", "3", "--offset", "2"))
    assert (page["total"], page["offset"], page["limit"]) == (9, 2, 3)
    assert [a["id"] for a in page["items"]] == ["A03", "A04", "A05"]
    assert len(page_items(run("accounts", "list", "--json"))) == 9  # piped or --json: every row


def test_a_page_says_how_many_more_there_are(book: None, run: Any) -> None:
    text = ok(run("accounts", "list", "--limit", "4"))
    assert "A04" in text and "A05" not in text
    assert text.endswith("5 more (use --offset/--limit)\n")
    assert "more" not in ok(run("accounts", "list", "--limit", "4", "--offset", "5"))
    assert ok(run("accounts", "list", "--offset", "20")) == "nothing to list (offset 20 is past the last of 9)\n"


def test_sort_owner_mine_and_per_noun_filters(book: None, run: Any) -> None:
    by_arr = page_items(run("accounts", "list", "--json", "--sort", "arr", "--limit", "2"))
    assert [a["id"] for a in by_arr] == ["A07", "A06"]  # largest ARR first
    assert [a["id"] for a in page_items(run("accounts", "list", "--json", "--owner", "carol"))] == ["C01", "C02"]
    mine = page_items(run("--as", "carol", "accounts", "list", "--json", "--mine"))
    assert [a["id"] for a in mine] == ["C01", "C02"]
    smb = page_items(run("accounts", "list", "--json", "--owner", "bob", "--segment", "smb"))
    assert [a["id"] for a in smb] == ["A01", "A03", "A05", "A07"]
    p1 = page_items(run("escalations", "list", "--json", "--priority", "P1"))
    assert [e["account"] for e in p1] == ["A01", "A02", "A03"]
    soon = page_items(run("escalations", "list", "--json", "--due-before", "2026-11-27"))
    assert sorted(e["account"] for e in soon) == ["A01", "A02"]
    assert error(run("accounts", "list", "--sort", "colour"), 2).startswith("error: Invalid value for '--sort'")
    assert error(run("accounts", "list", "--owner", "bob", "--mine"), 2) == (
        "error: --owner and --mine: give one of them"
    )


def test_review_list_kinds_and_filters(book: None, run: Any) -> None:
    reviews = page_items(run("review", "list", "--json", "--sort", "account"))
    assert [(r["account"], r["kind"]) for r in reviews] == [("A01", "manual"), ("C01", "manual")]
    assert [r["account"] for r in page_items(run("review", "list", "--json", "--owner", "carol"))] == ["C01"]
    # --mine: reviews I review or approve
    assert {r["account"] for r in page_items(run("--as", "bob", "review", "list", "--json", "--mine"))} == {
        "A01", "C01"}
    assert "manual" in ok(run("review", "list"))


def test_ack_several_ids_or_a_filter_all_or_nothing(book: None, run: Any) -> None:
    said = ok(run("--as", "bob", "escalations", "ack", "--mine", "--rule", "drop"))
    assert said == "".join(f"escalation {n} acknowledged\n" for n in range(1, 7))  # A01..A06; A07 is `stale`
    left = page_items(run("escalations", "list", "--json", "--status", "open", "--owner", "bob"))
    assert [e["account"] for e in left] == ["A07"]
    # carol may not resolve bob's: the whole command is refused and nothing changes
    refused = error(run("--as", "carol", "escalations", "resolve", "8", "1"), 1)
    assert "not carol" in refused
    statuses = {e["id"]: e["status"] for e in page_items(run("escalations", "list", "--json"))}
    assert statuses[8] == "open" and statuses[1] == "acknowledged"
    assert ok(run("--as", "carol", "escalations", "resolve", "8", "9")) == (
        "escalation 8 resolved\nescalation 9 resolved\n"
    )
    assert error(run("--as", "bob", "escalations", "ack"), 2).startswith("error: name escalation IDs or a filter")
    assert ok(run("--as", "bob", "escalations", "ack", "--mine")) == (
        "escalation 7 acknowledged\n"
    )
    assert ok(run("--as", "bob", "escalations", "ack", "--mine")) == "no escalation to ack\n"


def test_reassign_moves_the_book_in_one_audited_transaction(book: None, run: Any, database: Any) -> None:
    # erin manages someone else: refused, nothing moved
    assert error(run("--as", "erin", "accounts", "reassign", "--from", "bob", "--to", "carol"), 1) == (
        "error: only the owner's manager or an admin may reassign, not erin"
    )
    assert len(page_items(run("accounts", "list", "--json", "--owner", "bob"))) == 7
    said = ok(run("--as", "maria", "accounts", "reassign", "--from", "bob", "--to", "carol", "--reason", "bob left"))
    assert said == (
        "bob -> carol: 7 accounts, 1 draft review, 0 reviews to approve, 7 escalations\n"
        "left with bob as approver: review 2 (carol reviews it or is no manager); use `review reassign`\n"
    )
    assert len(page_items(run("accounts", "list", "--json", "--owner", "carol"))) == 9
    assert page_items(run("escalations", "list", "--json", "--owner", "bob")) == []
    with database.transaction() as session:
        review = session.scalars(select(Review).where(Review.id == 1)).one()
        assert review.reviewer == "carol"
        event = session.scalars(select(ReviewEvent).where(ReviewEvent.event == "reassign")).one()
        assert (event.review_id, event.actor, event.comment) == (1, "maria", "reviewer bob -> carol: bob left")
