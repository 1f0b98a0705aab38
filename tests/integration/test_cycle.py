"""Review cycles on a real database seeded with the sample portfolio: one complete cycle, step order, the escalate
guard, scope findings, trend cross-checks, carried findings, the seal and tampering, optimistic locking."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from pulsecheck.demo import examples_dir
from pulsecheck.demo.story import TEAM
from pulsecheck.errors import ConflictError, InputError, NotFoundError, RefusedError
from pulsecheck.states.cycle import STEPS
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, Issue, KpiReading, User
from pulsecheck.workflow import cycles
from pulsecheck.workflow import escalations as escalation
from pulsecheck.workflow.at_risk import at_risk
from pulsecheck.workflow.cycles.steps import run_step

CONFIG = cycles.CycleSettings(live_model=str(examples_dir() / "scoring.yaml"))


def seed(database: Database, now: datetime) -> None:
    """The sample team and portfolio, its inputs, the approved sample model with 13 weekly scorings and the
    sample rules active but not evaluated (so no escalation is open)."""
    from pulsecheck.workflow import inputs, models, scoring
    from pulsecheck.workflow.accounts import import_accounts
    from pulsecheck.workflow.rulesets import activate
    from pulsecheck.workflow.users import add_user

    tz = now.tzinfo
    assert tz is not None
    with database.transaction() as session:
        for name, roles, manager in TEAM:
            add_user(session, name, roles, now, email=f"{name}@example.com", manager=manager)
        import_accounts(session, examples_dir() / "accounts.csv")
        inputs.import_readings(session, examples_dir() / "readings.csv", tz, now)
        inputs.import_surveys(session, examples_dir() / "surveys.csv", tz, now)
        inputs.import_issues(session, examples_dir() / "issues.csv", tz)
        models.approve_model(session, examples_dir() / "scoring.yaml", user(session, "olga"), now)
        activate(session, examples_dir() / "rules.yaml", user(session, "olga"), now)
    for weeks_ago in range(12, -1, -1):
        with database.transaction() as session:
            scoring.score_portfolio(session, now - timedelta(weeks=weeks_ago), now)


@pytest.fixture
def portfolio(database: Database, now: datetime) -> Database:
    seed(database, now)
    return database


def user(session: Any, name: str) -> User:
    return session.scalars(select(User).where(User.name == name)).one()


class Cycle:
    """Drives one cycle through the services, one transaction per call, like the CLI does."""

    def __init__(self, database: Database, now: datetime, settings: cycles.CycleSettings = CONFIG) -> None:
        self.database, self.now, self.settings = database, now, settings
        self.id = 0

    def start(self, segments: tuple[str, ...] = (), actor: str = "bob", owner: str | None = None,
              period: str = "2026-11") -> Cycle:
        with self.database.transaction() as session:
            self.id = cycles.start(session, period, segments, owner, user(session, actor), self.now).id
        return self

    def step(self, step: str, actor: str = "bob", **kw: Any) -> dict[str, Any]:
        with self.database.transaction() as session:
            row = run_step(session, self.id, step, user(session, actor), self.now, self.settings, **kw)
            return dict(row.result)

    def steps(self, *names: str) -> dict[str, dict[str, Any]]:
        return {name: self.step(name) for name in names}

    def decide(self, account: str, decision: str = "monitor", owner: str = "bob", actor: str = "bob",
               reason: str | None = "watch it") -> None:
        with self.database.transaction() as session:
            cycles.decide(session, self.id, account, decision, owner, reason, user(session, actor), self.now)

    def finding(self, detail: str, action: str | None = None, kind: str = "data", owner: str | None = None,
                due: date | None = None) -> int:
        with self.database.transaction() as session:
            return cycles.add_finding(session, self.id, kind, detail, user(session, "bob"), self.now, action,
                                      owner, due).id

    def fire(self, event: str, actor: str, comment: str | None = None) -> str:
        with self.database.transaction() as session:
            return cycles.transition(session, self.id, event, user(session, actor), self.now, comment).state

    def data(self, full: bool = False) -> dict[str, Any]:
        with self.database.transaction() as session:
            return cycles.cycle_dict(session, cycles.get_cycle(session, self.id), full=full)

    def verify(self) -> list[str]:
        with self.database.transaction() as session:
            return cycles.verify(session, cycles.get_cycle(session, self.id))

    def complete(self) -> None:
        """All seven steps, with a monitor decision for every at-risk account."""
        results = self.steps("scope", "data", "model", "trends", "classify")
        for item in results["classify"]["at_risk"]:
            self.decide(item["account"], owner=item["owner"] or "bob", reason="renewal call booked")
        self.steps("escalate", "document")


def test_one_complete_cycle_from_start_to_a_sealed_archive(portfolio: Database, now: datetime) -> None:
    cycle = Cycle(portfolio, now).start()
    started = cycle.data()
    assert (started["state"], started["owner"], started["accounts"], started["next_step"]) == ("draft", "bob", 12,
                                                                                                "scope")
    assert started["model"]["version"] == "2026.11" and started["ruleset"]["name"] == "rules.yaml"
    assert started["findings"] == []  # every account has an owner and snapshots in November

    results = cycle.steps("scope", "data", "model", "trends", "classify")
    assert results["scope"]["accounts"] == 12 and results["scope"]["by_segment"] == {
        "enterprise": 4, "mid-market": 4, "smb": 4}
    assert results["data"]["total_open"] == sum(results["data"]["open"].values()) >= 1
    assert results["model"]["matches"] is True and results["model"]["mismatch"] is False
    assert results["model"]["snapshots_by_model"] == {"2026.11": 48}
    assert {d["account"] for d in results["trends"]["declining"]} == {"ACME"}
    assert {d["account"] for d in results["trends"]["low_streaks"]} == {"CYBERDYNE", "INITECH", "SOYLENT"}

    with portfolio.transaction() as session:
        expected = [a.external_id for a in at_risk(session, started_as_of(session, cycle.id), CONFIG.priority)]
    classified = results["classify"]["at_risk"]
    assert [a["account"] for a in classified] == expected and expected
    assert all(a["risk_level"] in ("critical", "high", "medium", "low") and a["priority"] for a in classified)

    with pytest.raises(RefusedError, match="cannot complete step escalate: 3 at-risk account"):
        cycle.step("escalate")
    for item in classified:
        cycle.decide(item["account"], owner=item["owner"], reason="renewal call booked")
    escalate = cycle.step("escalate")
    assert escalate["by_decision"] == {"monitor": len(classified)}
    cycle.finding("STARK usage feed is stale", action="Fix the feed", owner="olga", due=date(2026, 12, 15))
    document = cycle.step("document", note="all reviewed")
    assert document["findings"] == {"open": 1, "closed": 0, "with_corrective_action": 1, "carried": 0}
    assert document["non_conformances"][0]["detail"] == "STARK usage feed is stale"

    assert cycle.fire("submit", "bob") == "submitted"
    assert cycle.fire("approve", "maria", "Good work") == "approved"
    sealed = cycle.data(full=True)
    assert sealed["approver"] == "maria" and len(sealed["digest"]) == 64
    assert sealed["verification"] == {"problems": [], "ok": True}
    assert [e["event"] for e in sealed["history"]][-2:] == ["submit", "approve"]
    assert len(sealed["accounts_list"]) == 12 and {a["account"] for a in sealed["decisions"]} == set(expected)
    assert cycle.fire("close", "bob") == "closed"
    assert cycle.verify() == []  # closing does not break the seal


def started_as_of(session: Any, cycle_id: int) -> datetime:
    return cycles.get_cycle(session, cycle_id).as_of


def test_steps_run_in_order_and_a_redo_clears_the_later_ones(portfolio: Database, now: datetime) -> None:
    cycle = Cycle(portfolio, now).start()
    with pytest.raises(RefusedError, match="cannot complete step data: step scope is still open"):
        cycle.step("data")
    cycle.step("scope")
    with pytest.raises(RefusedError, match="cannot complete step trends: step data is still open"):
        cycle.step("trends")
    with pytest.raises(InputError, match="unknown step 'review'"):
        cycle.step("review")
    cycle.steps("data", "model", "trends")
    cycle.step("data", note="again, after accepting a deviation")
    data = cycle.data()
    assert [s["step"] for s in data["steps"] if s["done"]] == ["scope", "data"]
    assert data["history"][-2]["event"] == "redo" and "cleared: data, model, trends" in data["history"][-2]["comment"]
    with pytest.raises(RefusedError, match="cannot submit: step model is still open"):
        cycle.fire("submit", "bob")


def test_who_may_work_on_a_cycle(portfolio: Database, now: datetime) -> None:
    cycle = Cycle(portfolio, now).start()
    with pytest.raises(RefusedError, match="cannot complete step scope: alice is neither the cycle owner"):
        cycle.step("scope", actor="alice")
    cycle.step("scope", actor="hank")  # a manager may
    with pytest.raises(RefusedError, match="olga is neither a reviewer nor a manager"):
        Cycle(portfolio, now).start(actor="olga")
    with pytest.raises(NotFoundError, match="--owner: unknown user 'zed'"):
        Cycle(portfolio, now).start(owner="zed")
    with pytest.raises(InputError, match="--owner olga: neither a reviewer nor a manager"):
        Cycle(portfolio, now).start(owner="olga")
    with pytest.raises(InputError, match="--segment 'retail': unknown segment"):
        Cycle(portfolio, now).start(segments=("retail",))
    with pytest.raises(InputError, match="--period 2026-12: the period has not started yet"):
        Cycle(portfolio, now).start(period="2026-12")


def test_scope_findings_at_start(portfolio: Database, now: datetime) -> None:
    with portfolio.transaction() as session:
        session.add(Account(external_id="NEWCO", name="New Co", segment="enterprise"))
    cycle = Cycle(portfolio, now).start(segments=("enterprise",))
    data = cycle.data()
    assert data["segments"] == ["enterprise"] and data["accounts"] == 5
    assert sorted((f["kind"], f["detail"]) for f in data["findings"]) == [
        ("data", "1 account(s) in scope have no score snapshot in 2026-11: NEWCO"),
        ("process", "1 account(s) in scope have no owner: NEWCO"),
        ("process", "segment mid-market has 4 account(s) but is not in scope"),
        ("process", "segment smb has 4 account(s) but is not in scope"),
    ]
    scope = cycle.step("scope")
    assert scope["without_owner"] == {"count": 1, "accounts": ["NEWCO"]}
    with portfolio.transaction() as session:
        session.add(Account(external_id="LATECO", name="Late Co", segment="enterprise"))
    assert cycle.step("scope")["added_since_start"] == {"count": 1, "accounts": ["LATECO"]}


def test_an_open_escalation_with_an_owner_counts_as_a_decision(portfolio: Database, now: datetime) -> None:
    cycle = Cycle(portfolio, now).start()
    at_risk_accounts = [a["account"] for a in cycle.steps("scope", "data", "model", "trends", "classify")[
        "classify"]["at_risk"]]
    with portfolio.transaction() as session:
        ids = {a.external_id: a.id for a in session.scalars(select(Account))}
        escalation.create(session, ids[at_risk_accounts[0]], "manual", "high", "P2", "called", "alice", None, now)
        escalation.create(session, ids[at_risk_accounts[1]], "manual", "high", "P2", "called", None, None, now)
    with pytest.raises(RefusedError) as refused:
        cycle.step("escalate")
    assert at_risk_accounts[0] not in str(refused.value)
    assert f"{len(at_risk_accounts) - 1} at-risk account(s)" in str(refused.value)
    assert at_risk_accounts[1] in str(refused.value)  # an escalation nobody owns is no decision
    cycle.decide(at_risk_accounts[1], "escalate", owner="carol", reason="needs an exec sponsor")
    for account in at_risk_accounts[2:]:
        cycle.decide(account, owner="alice")
    result = cycle.step("escalate")
    sources = {d["account"]: d["source"] for d in result["decisions"]}
    assert sources[at_risk_accounts[0]].startswith("escalation ")
    assert sources[at_risk_accounts[1]] == "cycle decision"
    with portfolio.transaction() as session:
        opened = escalation.open_escalation(session, ids[at_risk_accounts[1]], f"cycle-{cycle.id}")
        assert opened is not None and opened.owner == "carol" and opened.priority in ("P1", "P2", "P3", "P4")
    # a later decision makes the escalate step run again
    cycle.decide(at_risk_accounts[2], owner="bob", reason="changed my mind")
    assert cycle.data()["next_step"] == "escalate"


def test_decisions_need_an_account_in_scope_a_known_owner_and_a_reason(portfolio: Database, now: datetime) -> None:
    cycle = Cycle(portfolio, now).start(segments=("smb",))
    with pytest.raises(InputError, match="account ACME is not in the scope of cycle"):
        cycle.decide("ACME")
    with pytest.raises(NotFoundError, match="unknown account 'NOPE'"):
        cycle.decide("NOPE")
    with pytest.raises(NotFoundError, match="--owner: unknown user 'zed'"):
        cycle.decide("SOYLENT", owner="zed")
    with pytest.raises(InputError, match="--reason is required for a monitor decision"):
        cycle.decide("SOYLENT", reason=None)


def test_trend_thresholds_and_cross_checks(portfolio: Database, now: datetime) -> None:
    """A healthy account with an open complaint is a possible false negative; an unhealthy one with no open
    issue and rising usage a possible false positive; the config thresholds decide what counts."""
    with portfolio.transaction() as session:
        accounts = {a.external_id: a for a in session.scalars(select(Account))}
        session.add(Issue(external_id="C-HOOLI", account_id=accounts["HOOLI"].id, kind="complaint", severity="high",
                          status="open", opened_at=now - timedelta(days=2)))
        for issue in session.scalars(select(Issue).where(Issue.account_id == accounts["CYBERDYNE"].id)):
            issue.status, issue.closed_at = "closed", now - timedelta(days=40)
        for age, value in ((timedelta(days=29), 10.0), (timedelta(hours=1), 90.0)):
            session.add(KpiReading(account_id=accounts["CYBERDYNE"].id, kpi="usage", value=value,
                                   observed_at=now - age, source="test", imported_at=now))
    cycle = Cycle(portfolio, now).start()
    trends = cycle.steps("scope", "data", "model", "trends")["trends"]
    negatives = {d["account"]: d["reasons"] for d in trends["possible_false_negatives"]}
    assert negatives["HOOLI"] == ["1 open complaint(s)"]
    positives = {d["account"]: d["usage_change"] for d in trends["possible_false_positives"]}
    assert positives.get("CYBERDYNE", 0) > 0
    assert set(trends["flagged"]) >= {"HOOLI", "CYBERDYNE", "ACME"}

    strict = Cycle(portfolio, now, dataclasses.replace(CONFIG, decline_points=50, low_streak=20, sudden_change=5,
                                                       renewal_days=400))
    strict.id = cycle.id
    again = strict.step("trends")
    assert again["declining"] == [] and again["low_streaks"] == []
    assert again["sudden_changes"] and all(abs(c["delta"]) >= 5 for c in again["sudden_changes"])
    assert again["thresholds"]["sudden_change"] == 5
    assert any(r.startswith("renewal in ") for d in again["possible_false_negatives"] for r in d["reasons"])


def test_a_live_model_that_differs_is_a_scoring_finding(portfolio: Database, now: datetime, tmp_path: Path) -> None:
    changed = tmp_path / "scoring.yaml"
    changed.write_text((examples_dir() / "scoring.yaml").read_text().replace("weight: 30", "weight: 31", 1)
                       .replace("weight: 20", "weight: 19", 1))
    cycle = Cycle(portfolio, now, dataclasses.replace(CONFIG, live_model=str(changed))).start()
    model = cycle.steps("scope", "data", "model")["model"]
    assert model["matches"] is False and model["differences"] and model["mismatch"] is True
    findings = cycle.data()["findings"]
    assert [f["kind"] for f in findings] == ["scoring"]
    assert findings[0]["detail"].startswith(f"live model {changed} differs from the approved model 2026.11: ")
    cycle.step("model")  # running it again does not repeat the finding
    assert len(cycle.data()["findings"]) == 1
    unchecked = Cycle(portfolio, now, dataclasses.replace(CONFIG, live_model=None)).start(segments=("smb",))
    assert unchecked.steps("scope", "data", "model")["model"]["checked"] is False
    assert any("live model not checked" in f["detail"] for f in unchecked.data()["findings"])


def test_open_findings_with_a_corrective_action_carry_into_the_next_cycle_of_the_same_scope(
    portfolio: Database, now: datetime
) -> None:
    first = Cycle(portfolio, now).start(segments=("smb", "enterprise"))
    kept = first.finding("usage feed stale", action="Fix the feed", owner="olga", due=date(2026, 12, 15))
    first.finding("no action yet")
    done = first.finding("closed one", action="Did it")
    with portfolio.transaction() as session:
        cycles.close_finding(session, done, "fixed on the 20th", user(session, "bob"), now)
        with pytest.raises(RefusedError, match=f"finding {done} is already closed"):
            cycles.close_finding(session, done, "again", user(session, "bob"), now)
    other_scope = Cycle(portfolio, now).start(segments=("smb",))
    assert other_scope.data()["findings"] == [
        f for f in other_scope.data()["findings"] if f["carried_from"] is None]
    second = Cycle(portfolio, now).start(segments=("enterprise", "smb"))
    carried = [f for f in second.data()["findings"] if f["carried_from"]]
    assert [(f["detail"], f["corrective_action"], f["owner"], f["due"], f["carried_from"]) for f in carried] == [
        ("usage feed stale", "Fix the feed", "olga", "2026-12-15", {"cycle": first.id, "finding": kept})]
    assert second.data()["history"][-1]["event"] == "carry"


def test_the_seal_detects_tampering(portfolio: Database, now: datetime) -> None:
    cycle = Cycle(portfolio, now).start()
    cycle.finding("stale feed", action="fix it", owner="olga")
    cycle.complete()
    assert cycle.verify() == []  # a draft has no seal but a consistent trail
    cycle.fire("submit", "bob")
    assert cycle.fire("approve", "maria", "ok") == "approved"
    assert cycle.verify() == []
    with portfolio.transaction() as session:
        with pytest.raises(RefusedError, match="the cycle is approved and sealed"):
            cycles.add_finding(session, cycle.id, "other", "late", user(session, "bob"), now)
    statements = [
        "UPDATE cycle_findings SET detail = 'nothing to see' WHERE cycle_id = :id",
        "UPDATE cycle_steps SET note = 'edited' WHERE cycle_id = :id AND step = 'trends'",
        "UPDATE cycle_decisions SET owner = 'alice' WHERE cycle_id = :id",
        "UPDATE review_cycles SET account_ids = '[1]' WHERE id = :id",
        "DELETE FROM cycle_events WHERE cycle_id = :id AND event = 'decide'",
    ]
    for statement in statements:
        with portfolio.engine.begin() as conn:
            conn.execute(text("SAVEPOINT tamper"))
            conn.execute(text(statement), {"id": cycle.id})
        problems = cycle.verify()
        assert problems and problems[0].startswith("content changed after approval"), statement
        # a change to the cycle row itself is also one the audit chain names
        assert all("audit chain" in p for p in problems[1:]), (statement, problems)
        restore(portfolio, cycle)
    with portfolio.engine.begin() as conn:
        conn.execute(text("UPDATE review_cycles SET state = 'draft' WHERE id = :id"), {"id": cycle.id})
    assert "state is draft but the audit trail leads to approved" in cycle.verify()


def restore(database: Database, cycle: Cycle) -> None:
    """Give the tampered cycle a fresh seal over its current content (so each tampering is tested alone)."""
    from pulsecheck.workflow.cycles.seal import seal

    with database.transaction() as session:
        seal(session, cycle.id)
    assert cycle.verify() == []


def test_two_people_changing_one_cycle_at_once_conflict(portfolio: Database, now: datetime) -> None:
    cycle = Cycle(portfolio, now).start()
    with pytest.raises(ConflictError, match="someone else changed this record"):
        with portfolio.transaction() as first:
            loaded = cycles.get_cycle(first, cycle.id)
            assert loaded.state == "draft"
            cycle.finding("bob's finding")  # commits in its own transaction meanwhile
            cycles.add_finding(first, cycle.id, "other", "hank's finding", user(first, "hank"), now)
    details = [f["detail"] for f in cycle.data()["findings"]]
    assert details == ["bob's finding"]


def test_complete_cycle_on_postgres(pg_database: Database, now: datetime) -> None:
    seed(pg_database, now)
    cycle = Cycle(pg_database, now).start()
    cycle.complete()
    cycle.fire("submit", "bob")
    cycle.fire("approve", "hank", "fine")
    assert cycle.verify() == []
    with pg_database.engine.begin() as conn:
        conn.execute(text("UPDATE cycle_steps SET result = CAST(:r AS JSON) WHERE cycle_id = :id AND step = 'data'"),
                     {"r": json.dumps({"open": {}}), "id": cycle.id})
    assert cycle.verify()[0].startswith("content changed after approval")


def test_list_and_json_shapes(portfolio: Database, now: datetime) -> None:
    first = Cycle(portfolio, now).start()
    second = Cycle(portfolio, now).start(segments=("smb",), owner="alice", actor="maria")
    with portfolio.transaction() as session:
        listed = [cycles.summary_dict(session, c) for c in cycles.list_cycles(session)]
        drafts = cycles.list_cycles(session, "draft")
        with pytest.raises(InputError, match="--state 'open'"):
            cycles.list_cycles(session, "open")
    assert [c["id"] for c in listed] == [second.id, first.id] and len(drafts) == 2
    assert set(listed[0]) == {"id", "period", "segments", "owner", "approver", "state", "as_of", "accounts",
                              "steps_done", "next_step", "open_findings", "sealed"}
    assert (listed[0]["owner"], listed[0]["accounts"], listed[0]["segments"]) == ("alice", 4, ["smb"])
    shown = first.data()
    assert [s["step"] for s in shown["steps"]] == list(STEPS)
    json.dumps(first.data(full=True))  # everything is JSON
