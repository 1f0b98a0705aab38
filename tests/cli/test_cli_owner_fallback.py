"""An escalation never goes to nobody: an account without owner escalates to its segment's default owner, else to
`[escalation] fallback_owner`, else to the admins, and the message says so. P1 is capped by `[priority] p1_share`.
Checked through the CLI on the scored sample portfolio."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Notification
from tests.conftest import Run, Templates, ok, page_items, scored_sample

RULES = """\
version: 1
rules:
  - id: everyone
    description: Every account with an ARR
    when:
      all:
        - arr: {gte: 0}
    then:
      escalate: {severity: critical, due_in: 2d, notify: [owner]}
"""
# Two accounts without owner: one in the smb segment (default owner carol), one in a segment without an owner.
ORPHANS = (
    "external_id,name,segment,tier,arr,owner,manager,renewal_date,contract_start,stage\n"
    "ORPHAN,Orphan Ltd,smb,bronze,1000,,,2027-06-01,2024-06-01,active\n"
    "STRAY,Stray Inc,labs,bronze,2000,,,2027-06-01,2024-06-01,active\n"
)


@pytest.fixture
def portfolio(run: Run, database: Database, templates: Templates, tmp_path: Path) -> Path:
    templates.load(database, templates.seeded("scored_sample", scored_sample))
    accounts = tmp_path / "orphans.csv"
    accounts.write_text(ORPHANS, encoding="utf-8")
    ok(run("accounts", "import", str(accounts)))
    rules = tmp_path / "everyone.yaml"
    rules.write_text(RULES, encoding="utf-8")
    ok(run("--as", "olga", "rules", "activate", str(rules)))
    return tmp_path


def bodies(database: Database, account: str) -> dict[str, str]:
    with database.transaction() as session:
        found = session.scalars(select(Notification).where(Notification.subject.endswith(account)))
        return {row.recipient: row.body for row in found}


def test_escalations_without_owner_go_to_the_segment_owner_or_the_admins(
    run: Run, database: Database, portfolio: Path, os_login_admin: str
) -> None:
    config = portfolio / "pulsecheck.toml"
    config.write_text('[segments.smb]\nowner = "carol"\n', encoding="utf-8")
    out = ok(run("--config", str(config), "evaluate", "--verbose"))
    assert "to carol (fallback owner): Every account with an ARR" in out
    assert "to the admins (no owner): Every account with an ARR" in out
    listed = {e["account"]: e for e in page_items(run("escalations", "list", "--json"))}
    assert (listed["ORPHAN"]["owner"], listed["STRAY"]["owner"]) == ("carol", None)
    assert listed["ACME"]["owner"] == "bob"  # an owned account keeps its owner
    orphan, stray = bodies(database, "Orphan Ltd"), bodies(database, "Stray Inc")
    assert list(orphan) == ["carol"]
    assert "Orphan Ltd has no owner: this goes to carol, its fallback owner." in orphan["carol"]
    assert list(stray) == [os_login_admin]  # the one admin
    assert "Stray Inc has no owner and no fallback owner is set: this goes to the admins." in stray[os_login_admin]


def test_fallback_owner_takes_what_no_segment_owner_does(run: Run, database: Database, portfolio: Path) -> None:
    config = portfolio / "pulsecheck.toml"
    config.write_text('[escalation]\nfallback_owner = "maria"\n', encoding="utf-8")
    ok(run("--config", str(config), "evaluate"))
    listed = {e["account"]: e for e in page_items(run("escalations", "list", "--json"))}
    assert (listed["ORPHAN"]["owner"], listed["STRAY"]["owner"]) == ("maria", "maria")
    assert list(bodies(database, "Stray Inc")) == ["maria"]


def test_p1_is_capped_to_the_top_share_by_priority_score(run: Run, portfolio: Path) -> None:
    # 14 critical escalations (12 sample accounts and the two orphans), all P1 by the matrix; 10 % may stay P1:
    # ceil(1.4) = 2, the two highest scores
    ok(run("evaluate"))
    listed = page_items(run("escalations", "list", "--json"))
    assert len(listed) == 14
    assert [e["priority"] for e in listed] == ["P1"] * 2 + ["P2"] * 12
    scores = [e["priority_score"] for e in listed]
    assert scores[:2] == sorted(scores, reverse=True)[:2] and scores[2:] == sorted(scores[2:], reverse=True)
    assert min(scores[:2]) > max(scores[2:]) and all(s >= 40.0 for s in scores)  # critical: 40 points at least


def test_a_fallback_owner_who_is_not_a_user_leaves_it_to_the_admins(
    run: Run, database: Database, portfolio: Path, os_login_admin: str
) -> None:
    config = portfolio / "pulsecheck.toml"
    config.write_text('[escalation]\nfallback_owner = "ghost"\n', encoding="utf-8")
    ok(run("--config", str(config), "evaluate"))
    assert list(bodies(database, "Stray Inc")) == [os_login_admin]
