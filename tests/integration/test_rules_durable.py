"""The rules engine: validator messages, durable-rules vs the plain evaluator, sharding, crashes, and evaluate
over a real portfolio (idempotency, cooldown, resolve_when_clear, dry run)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from pulsecheck.demo import examples_dir
from pulsecheck.demo.story import DEMO_NOW
from pulsecheck.errors import ValidationFailed
from pulsecheck.rules import durable
from pulsecheck.rules.evaluator import evaluate_plain
from pulsecheck.rules.language import load_rules
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Escalation, EvaluationRun, Issue, Notification, Review, RuleFiring, User
from pulsecheck.workflow import escalations as escalation
from pulsecheck.workflow.evaluation import EvaluationSettings, evaluate
from tests.integration.conftest import SAMPLE_ESCALATIONS, escalated
from tests.integration.engine_crash import crashing_workers

NUMBER_FACTS = ["score", "score_drop_30d", "open_complaints", "days_to_renewal", "kpi.nps", "arr", "concerns",
                "group.customer_value"]  # fmt: skip
STRING_FACTS = {
    "bucket": ["unhealthy", "neutral", "healthy"],
    "segment": ["smb", "enterprise"],
    "kpi_status.nps": ["concern", "neutral", "strength"],
}


def test_validator_reports_every_problem_with_its_line() -> None:
    text = (
        "version: 1\nrules:\n  - id: a\n    when:\n      score_dorp_30d: {gte: 15}\n    then:\n"
        "      escalate: {severity: hihg}\n  - id: a\n    when: {bucket: {gt: 3}}\n    then: {notfy: {roles: [x]}}\n"
    )
    with pytest.raises(ValidationFailed) as caught:
        load_rules(text, "r.yaml")
    assert caught.value.problems == [
        "r.yaml:5: unknown fact 'score_dorp_30d' (did you mean 'score_drop_30d'?)",
        "r.yaml:7: escalate: severity 'hihg' is not one of low, medium, high, critical",
        "r.yaml:8: duplicate rule id 'a' (first at line 3)",
        "r.yaml:9: rule a: bucket (string) gt: ordering needs a number fact",
        "r.yaml:10: unknown action 'notfy' (did you mean 'notify'?)",
    ]


def test_scorecard_facts_validate_and_their_misspellings_get_a_suggestion() -> None:
    good = (
        "version: 1\nrules:\n  - id: a\n    when: {kpi_status.logins: {eq: concern}, concerns: {gte: 2}, "
        "group.customer_value: {lt: 50}, kpi.logins: {lt: 10}}\n    then: {notify: [owner]}\n"
    )
    assert len(load_rules(good, "r.yaml").rules) == 1
    with pytest.raises(ValidationFailed) as caught:
        load_rules(good.replace("concerns:", "concern:").replace("group.customer_value", "groups.x"), "r.yaml")
    assert caught.value.problems == [
        "r.yaml:4: unknown fact 'concern' (did you mean 'concerns'?)",
        "r.yaml:4: unknown fact 'groups.x'",
    ]
    with pytest.raises(ValidationFailed, match=r"concerns \(number\) gte: expected a number"):
        load_rules(good.replace("{gte: 2}", "{gte: many}"), "r.yaml")


def test_a_number_fact_compared_with_text_is_an_error_not_a_string_comparison() -> None:
    text = "version: 1\nrules:\n  - id: a\n    when: {score: {gte: '15'}}\n    then: {notify: [owner]}\n"
    with pytest.raises(ValidationFailed, match=r"r.yaml:4: rule a: score \(number\) gte: expected a number"):
        load_rules(text, "r.yaml")


def _leaf(rnd: random.Random) -> dict[str, Any]:
    if rnd.random() < 0.3:
        fact = rnd.choice(list(STRING_FACTS))
        values = STRING_FACTS[fact]
        op = rnd.choice(["eq", "ne", "in", "not_in", "exists", "missing"])
        value: Any = {
            "eq": rnd.choice(values),
            "ne": rnd.choice(values),
            "in": rnd.sample(values, 2),
            "not_in": rnd.sample(values, 1),
            "exists": True,
            "missing": True,
        }[op]
        return {fact: {op: value}}
    fact = rnd.choice(NUMBER_FACTS)
    op = rnd.choice(["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "between", "exists", "missing"])
    low = rnd.choice([-50, 0, 1, 2.5, 15, 40, 60, 80])
    value = {
        "in": [low, low + 1],
        "not_in": [low],
        "between": [low, low + rnd.choice([0, 5, 30])],
        "exists": True,
        "missing": True,
    }.get(op, low)
    return {fact: {op: value}}


def _condition(rnd: random.Random, depth: int = 0) -> dict[str, Any]:
    if depth >= 2 or rnd.random() < 0.4:
        return _leaf(rnd)
    kind = rnd.choice(["all", "any", "not"])
    if kind == "not":
        return {"not": _condition(rnd, depth + 1)}
    return {kind: [_condition(rnd, depth + 1) for _ in range(rnd.randint(1, 3))]}


def _facts(rnd: random.Random) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for fact in NUMBER_FACTS:
        facts[fact] = None if rnd.random() < 0.15 else rnd.choice([-50, 0, 1, 2.5, 3, 15, 16, 40, 41, 60, 79.99, 80])
    for fact, values in STRING_FACTS.items():
        facts[fact] = None if rnd.random() < 0.15 else rnd.choice(values)
    return facts


def _rules_text(conditions: list[dict[str, Any]]) -> str:
    import yaml

    return yaml.safe_dump(
        {
            "version": 1,
            "rules": [
                {"id": f"r{i}", "when": cond, "then": {"notify": ["owner"]}} for i, cond in enumerate(conditions)
            ],
        }
    )


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_durable_rules_and_the_plain_evaluator_fire_identically(seed: int) -> None:
    rnd = random.Random(seed)
    rules = load_rules(_rules_text([_condition(rnd) for _ in range(rnd.randint(5, 40))]), "gen.yaml")
    accounts = [(i, _facts(rnd)) for i in range(rnd.randint(300, 1500))]
    fired = durable.evaluate(rules, accounts)
    assert fired == evaluate_plain(rules.rules, accounts)
    assert fired, "the generated rules should fire for at least one account"


def test_65_rules_all_true_for_one_account_still_fire_every_rule() -> None:
    rules = load_rules(_rules_text([{"score": {"gte": i}} for i in range(65)]), "many.yaml")
    assert len(durable.compile_rules(rules)) >= 2  # sharded below the 64-branch limit of the C core
    fired = durable.evaluate(rules, [(7, {"score": 99})])
    assert fired == [(7, f"r{i}") for i in sorted(range(65), key=lambda i: f"r{i}")]


def test_a_crashing_worker_becomes_a_clean_error(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    rules = load_rules(_rules_text([{"score": {"gte": 1}}]), "crash.yaml")
    clean_error = pytest.raises(durable.EngineCrashed, match="crashed in a worker process.*nothing was written")
    with crashing_workers(monkeypatch, capfd), clean_error:
        durable.evaluate(rules, [(1, {"score": 5})])


def _count(database: Database, model: Any, *where: Any) -> int:
    with database.transaction() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_evaluate_opens_escalations_once_and_records_the_run(rules_portfolio: Database) -> None:
    report = evaluate(rules_portfolio, EvaluationSettings(), DEMO_NOW, DEMO_NOW)
    assert ("ACME", "drop-with-complaints") in report.firings
    assert escalated(rules_portfolio) == SAMPLE_ESCALATIONS
    opened = _count(rules_portfolio, Escalation)
    assert opened == len(SAMPLE_ESCALATIONS)
    with rules_portfolio.transaction() as session:
        acme = session.scalars(select(Escalation).where(Escalation.rule_id == "drop-with-complaints")).one()
        assert acme.reason.startswith("score fell 16.79 points in 30 days")
        assert acme.owner == "bob" and acme.priority == "P1"  # high, renewal in 47 days, ARR 240k
        assert acme.review_id is not None
        review = session.get(Review, acme.review_id)
        assert review is not None and review.kind == "rule" and review.state == "draft"
        assert [e.cause for e in review.events][-1].startswith("rule:")
        firing = session.scalars(select(RuleFiring).where(RuleFiring.rule_id == "drop-with-complaints")).one()
        assert firing.facts == {"score_drop_30d": 16.79, "open_complaints": 2}
    assert _count(rules_portfolio, Notification, Notification.kind == "escalation_opened") >= opened
    again = evaluate(rules_portfolio, EvaluationSettings(), DEMO_NOW, DEMO_NOW)
    assert not [p for p in again.actions if p.action in ("escalate", "open_review")]
    assert _count(rules_portfolio, Escalation) == opened
    assert _count(rules_portfolio, EvaluationRun) == 2


def test_cooldown_and_resolve_when_clear(rules_portfolio: Database) -> None:
    evaluate(rules_portfolio, EvaluationSettings(), DEMO_NOW, DEMO_NOW)
    with rules_portfolio.transaction() as session:
        maria = session.scalars(select(User).where(User.name == "maria")).one()
        low = session.scalars(select(Escalation).where(Escalation.rule_id == "three-low-in-a-row")).first()
        assert low is not None
        escalation.resolve(session, low.id, maria, DEMO_NOW)
    later = DEMO_NOW + timedelta(days=1)
    evaluate(rules_portfolio, EvaluationSettings(), later, later)
    # the 30-day cooldown keeps the resolved one from reopening although the rule still matches
    assert (
        _count(
            rules_portfolio,
            Escalation,
            Escalation.rule_id == "three-low-in-a-row",
            Escalation.account_id == low.account_id,
            Escalation.status != "resolved",
        )
        == 0
    )
    with rules_portfolio.transaction() as session:  # ACME's complaints get closed: its drop rule stops matching
        for issue in session.scalars(select(Issue).where(Issue.kind == "complaint", Issue.status == "open")):
            issue.status, issue.closed_at = "closed", later
    report = evaluate(rules_portfolio, EvaluationSettings(), later, later)
    assert any(p.rule == "drop-with-complaints" and p.account == "ACME" for p in report.resolved)
    assert (
        _count(
            rules_portfolio, Escalation, Escalation.rule_id == "drop-with-complaints", Escalation.status == "resolved"
        )
        == 1
    )



def test_a_rule_fires_again_once_its_cooldown_is_over(rules_portfolio: Database) -> None:
    """three-low-in-a-row has `cooldown: 30d`: resolved today, it stays quiet for 30 days, then reopens.

    The facts stay those of DEMO_NOW (as_of) while the clock moves on, so the rule keeps matching throughout."""
    evaluate(rules_portfolio, EvaluationSettings(), DEMO_NOW, DEMO_NOW)
    with rules_portfolio.transaction() as session:
        maria = session.scalars(select(User).where(User.name == "maria")).one()
        first = session.scalars(select(Escalation).where(Escalation.rule_id == "three-low-in-a-row")).first()
        assert first is not None
        account_id, account = first.account_id, first.account.external_id
        escalation.resolve(session, first.id, maria, DEMO_NOW)

    def open_ones() -> list[tuple[int, datetime]]:
        with rules_portfolio.transaction() as session:
            found = session.scalars(select(Escalation).where(
                Escalation.rule_id == "three-low-in-a-row", Escalation.account_id == account_id,
                Escalation.status != "resolved"))
            return [(e.id, e.opened_at) for e in found]

    almost = DEMO_NOW + timedelta(days=30) - timedelta(seconds=1)
    evaluate(rules_portfolio, EvaluationSettings(), DEMO_NOW, almost)
    assert open_ones() == []
    over = DEMO_NOW + timedelta(days=30)
    report = evaluate(rules_portfolio, EvaluationSettings(), DEMO_NOW, over)
    (reopened,) = open_ones()
    assert reopened[0] != first.id and reopened[1] == over
    # the other accounts' escalations of this rule are still open: only the resolved one comes back
    assert [(p.account, p.action) for p in report.actions if p.rule == "three-low-in-a-row"] == [(account, "escalate")]

def test_dry_run_plans_but_writes_nothing(rules_portfolio: Database) -> None:
    report = evaluate(rules_portfolio, EvaluationSettings(), DEMO_NOW, DEMO_NOW, dry_run=True)
    assert any(p.action == "escalate" for p in report.actions)
    assert _count(rules_portfolio, Escalation) == 0
    assert _count(rules_portfolio, EvaluationRun) == 0
    assert _count(rules_portfolio, Notification) == 0


def test_rules_cli_round_trip(rules_portfolio: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from pulsecheck.cli import cli

    monkeypatch.setenv("PULSECHECK_DATABASE_URL", str(rules_portfolio.engine.url))
    monkeypatch.setenv("PULSECHECK_NOW", DEMO_NOW.isoformat())
    runner = CliRunner()
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    when: {scroe: {gt: 1}}\n    then: {notify: [owner]}\n")
    result = runner.invoke(cli, ["rules", "validate", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:4: unknown fact 'scroe' (did you mean 'score'?)" in result.stderr
    result = runner.invoke(cli, ["evaluate", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    assert _count(rules_portfolio, Escalation) == 0
    result = runner.invoke(cli, ["evaluate"])
    assert result.exit_code == 0 and "escalate" in result.stdout
    result = runner.invoke(cli, ["rules", "explain", "--account", "ACME"])
    assert "FIRES drop-with-complaints" in result.stdout and "score_drop_30d gte 15 (actual 16.79)" in result.stdout
    result = runner.invoke(cli, ["escalations", "list", "--open", "--json"])
    listed = __import__("json").loads(result.stdout)["items"]
    assert any(e["account"] == "ACME" and e["rule"] == "drop-with-complaints" for e in listed)
    result = runner.invoke(
        cli,
        [
            "rules",
            "backtest",
            str(examples_dir() / "rules.yaml"),
            "--from",
            "2026-09-01",
            "--to",
            "2026-11-24",
            "--json",
        ],
    )
    assert result.exit_code == 0
    data = __import__("json").loads(result.stdout)
    assert data["candidate"]["dates"] == 13
    assert ["ACME"] == sorted({a for a, _ in data["candidate"]["rules"]["drop-with-complaints"]})


def test_huge_and_tiny_numbers_reach_the_engine_and_both_engines_agree() -> None:
    rules = load_rules(
        _rules_text(
            [
                {"arr": {"gte": 100_000_000_000_000}},
                {"arr": {"lt": 1}},
                {"kpi.nps": {"gt": 0}},
                {"kpi.nps": {"eq": 0}},
                {"score": {"between": [0, 0.0001]}},
                {"not": {"arr": {"lte": 999_999_999_999_999}}},
            ]
        ),
        "numbers.yaml",
    )
    values = [1e17, 1e16, 2.5e20, 2**70, 1e-9, -1e-9, 1e-5, 0.00015, 0, 42.0]
    accounts = [(i, {"arr": v, "kpi.nps": values[-1 - n], "score": v}) for n, v in enumerate(values) for i in [n]]
    fired = durable.evaluate(rules, accounts)
    assert fired == evaluate_plain(rules.rules, accounts)
    assert (0, "r0") in fired and (0, "r5") in fired and (4, "r1") in fired  # ARR 1e17 is huge, 1e-9 below 1


def test_a_rule_with_the_most_groups_the_validator_allows_runs_in_the_engine() -> None:
    node: Any = {"score": {"gte": 1}}
    for i in range(14):  # 14 groups + the rule's own = 15
        node = {"all" if i % 2 else "any": [{"arr": {"gt": i}}, node]}
    rules = load_rules(_rules_text([node]), "deep.yaml")
    accounts = [(i, {"score": i % 3, "arr": i % 20}) for i in range(40)]
    assert durable.evaluate(rules, accounts) == evaluate_plain(rules.rules, accounts)


@pytest.mark.parametrize("per_sid", [1, durable.ACCOUNTS_PER_SID, 200])
def test_thousands_of_accounts_lose_no_fact(per_sid: int) -> None:
    """A few thousand accounts per sid size: the engine's firings are exactly the plain evaluator's."""
    for seed in (11, 12):
        rnd = random.Random(seed)
        rules = load_rules(_rules_text([_condition(rnd) for _ in range(30)]), "gen.yaml")
        accounts = [(i, _facts(rnd)) for i in range(3000)]
        fired = durable.evaluate(rules, accounts, per_sid=per_sid, chunk_size=700)
        assert fired == evaluate_plain(rules.rules, accounts)
        assert {a for a, _ in fired} == {a for a, _ in evaluate_plain(rules.rules, accounts)}


def test_a_fact_the_core_drops_is_noticed_and_evaluated_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import durable_rules_engine as dre

    real_assert, dropped = dre.assert_facts, []

    def dropping_assert(handle: int, payload: str) -> Any:
        facts = json.loads(payload)
        if len(facts) > 1 and not dropped:  # the core "forgets" one fact of the first batch, returning rc 0
            dropped.append(facts.pop(3)["id"])
        return real_assert(handle, json.dumps(facts))

    rules = load_rules(_rules_text([{"score": {"gte": 10}}, {"bucket": {"in": ["unhealthy"]}}]), "drop.yaml")
    accounts = [(i, {"score": i, "bucket": "unhealthy"}) for i in range(50)]
    monkeypatch.setattr(dre, "assert_facts", dropping_assert)
    durable.init_worker(durable.compile_rules(rules))  # in this process: the rules are harmless
    try:
        fired = durable.evaluate_chunk(accounts, per_sid=20)
    finally:
        for handle in durable._HANDLES:
            dre.delete_ruleset(handle)
        durable._HANDLES.clear()
    assert dropped == ["account:3"]
    assert fired == evaluate_plain(rules.rules, accounts)
