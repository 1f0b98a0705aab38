"""`pulsecheck inbox`: what waits for the acting user, section by section, with counts."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from pulsecheck.storage.models import Account, CycleFinding, Escalation, ReviewCycle
from tests.conftest import NOW, as_json, ok


@pytest.fixture
def desk(factory: Any, database: Any) -> dict[str, int]:
    """bob: a draft of ACME with an action due in 3 days and one due in 30; maria approves GLOBEX's submitted
    review; bob owns an open and an acknowledged escalation; maria owns a draft cycle with a finding."""
    factory.team()
    factory.account("GLOBEX", owner="bob", manager="maria")
    factory.account("INITECH", owner="maria", manager="maria")
    draft = factory.review("ACME")
    factory.complete(draft)
    submitted = factory.review("GLOBEX")
    factory.complete(submitted)
    factory.fire(submitted, "submit", "bob")
    with database.transaction() as session:
        from pulsecheck.storage.models import MitigationAction

        session.add(MitigationAction(review_id=draft, number=2, risk_number=1, description="Call the CFO",
                                     owner="bob", due_date=date(2026, 11, 27)))
        session.add(MitigationAction(review_id=draft, number=3, risk_number=1, description="Later thing",
                                     owner="bob", due_date=date(2026, 12, 24)))
        ids = {a.external_id: a.id for a in session.scalars(select(Account))}
        for account, status in (("ACME", "open"), ("GLOBEX", "acknowledged")):
            session.add(Escalation(account_id=ids[account], rule_id="drop", severity="high", priority="P1",
                                   reason="score fell", owner="bob", level=0, opened_at=NOW, status=status,
                                   due_at=datetime(2026, 11, 25, 12, 0, tzinfo=NOW.tzinfo)))
        cycle = ReviewCycle(period="2026-Q4", segments=[], owner="maria", approver=None, state="draft", as_of=NOW,
                            account_ids=[], created_at=NOW)
        session.add(cycle)
        session.flush()
        session.add(CycleFinding(cycle_id=cycle.id, kind="data", detail="usage feed late", owner="maria",
                                 due=date(2026, 11, 20)))
    return {"draft": draft, "submitted": submitted}


def test_inbox_lists_each_kind_of_work_for_the_acting_user(desk: dict[str, int], run: Any) -> None:
    bob = as_json(run("--as", "bob", "inbox", "--json"))
    assert bob["user"] == "bob"
    # the complete() helper gives the draft's first action a due date 30 days out: outside the 7-day horizon
    assert bob["counts"] == {"drafts": 1, "approvals": 0, "escalations": 1, "actions": 1, "cycle_steps": 0,
                             "findings": 0}
    assert bob["total"] == 3
    sections = {s["key"]: s for s in bob["sections"]}
    assert sections["drafts"]["items"][0]["review"] == desk["draft"]
    assert sections["escalations"]["items"][0]["account"] == "ACME"  # the acknowledged one is not waiting
    assert [a["description"] for a in sections["actions"]["items"]] == ["Call the CFO"]

    maria = as_json(run("--as", "maria", "inbox", "--json"))
    assert maria["counts"]["approvals"] == 1
    assert {s["key"]: s for s in maria["sections"]}["approvals"]["items"][0]["review"] == desk["submitted"]
    cycle = {s["key"]: s for s in maria["sections"]}["cycle_steps"]["items"][0]
    assert (cycle["period"], cycle["next"]) == ("2026-Q4", "scope")
    finding = {s["key"]: s for s in maria["sections"]}["findings"]["items"][0]
    assert (finding["detail"], finding["overdue"]) == ("usage feed late", True)


def test_inbox_text_names_the_sections_and_times_in_the_business_zone(
    desk: dict[str, int], run: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "settings.toml").write_text('timezone = "Europe/Berlin"\n')
    monkeypatch.setenv("PULSECHECK_CONFIG", str(tmp_path / "settings.toml"))
    text = ok(run("--as", "bob", "inbox"))
    assert text.startswith("inbox of bob, 2026-11-24 10:00: 1 drafts to fill, 1 escalations to acknowledge")
    assert "Escalations to acknowledge (1; ack)" in text
    assert "2026-11-25 13:00" in text  # 12:00 UTC is 13:00 in Berlin in November
    assert "Call the CFO" in text and "Later thing" not in text


def test_inbox_longer_horizon_and_limit(desk: dict[str, int], run: Any) -> None:
    bob = as_json(run("--as", "bob", "inbox", "--json", "--horizon", "60", "--limit", "1"))
    actions = {s["key"]: s for s in bob["sections"]}["actions"]
    # the two 30-day actions of complete() (the draft's and the submitted review's), 3 days, 30 days
    assert actions["total"] == 4 and len(actions["items"]) == 1
    assert actions["items"][0]["due_date"] == (NOW.date() + timedelta(days=3)).isoformat()


def test_empty_inbox_says_so(factory: Any, run: Any) -> None:
    factory.team()
    assert "nothing waiting" in ok(run("--as", "olga", "inbox"))


def test_a_long_section_pages_in_due_order_with_its_total(factory: Any, database: Any, run: Any) -> None:
    """Five drafts for bob due on different days: `--limit 2` shows the two due first, and the total of five."""
    from pulsecheck.storage.models import Review

    factory.team()
    due = {}
    for n, days in enumerate((9, 2, 7, 1, 5)):
        factory.account(f"ACC{n}", owner="bob", manager="maria")
        review = factory.review(f"ACC{n}")
        due[f"ACC{n}"] = NOW + timedelta(days=days)
        with database.transaction() as session:
            found = session.get(Review, review)
            assert found is not None
            found.due_at = due[f"ACC{n}"]
    bob = as_json(run("--as", "bob", "inbox", "--json", "--limit", "2"))
    drafts = {s["key"]: s for s in bob["sections"]}["drafts"]
    assert drafts["total"] == 5 and drafts["limit"] == 2
    assert [item["account"] for item in drafts["items"]] == ["ACC3", "ACC1"]  # due in 1 day, then in 2
