"""`evaluate --dry-run` and `evaluate` share one planner: on the sample portfolio the dry run lists exactly what the
real run then does, reviews opened through escalations included, and the database holds exactly that. The CLI
prints counts per rule and action by default and every action with --verbose."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from pulsecheck.cli import cli
from pulsecheck.demo.story import DEMO_NOW
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, Escalation, Review, ReviewEvent
from pulsecheck.workflow.evaluation import EvaluationSettings, evaluate
from tests.integration.conftest import SAMPLE_ESCALATIONS

SMALL_BATCHES = EvaluationSettings(batch_size=2)


def _written(database: Database) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(account, rule) of every escalation, and (account, rule) of every review opened by a rule, read back."""
    with database.transaction() as session:
        escalations = {(e.account.external_id, e.rule_id) for e in session.scalars(select(Escalation))}
        opened = session.execute(
            select(Account.external_id, ReviewEvent.cause)
            .join(Review, Review.account_id == Account.id)
            .join(ReviewEvent, ReviewEvent.review_id == Review.id)
            .where(ReviewEvent.event == "open")
        )
        reviews = {(account, cause.removeprefix("rule:")) for account, cause in opened if cause.startswith("rule:")}
    return escalations, reviews


def test_the_dry_run_lists_exactly_what_the_real_run_does(rules_portfolio: Database) -> None:
    dry = evaluate(rules_portfolio, SMALL_BATCHES, DEMO_NOW, DEMO_NOW, dry_run=True)
    assert _written(rules_portfolio) == (set(), set())
    real = evaluate(rules_portfolio, SMALL_BATCHES, DEMO_NOW, DEMO_NOW)
    assert dry.actions == real.actions and dry.resolved == real.resolved
    escalations, reviews = _written(rules_portfolio)
    assert escalations == SAMPLE_ESCALATIONS
    assert {(p.account, p.rule) for p in dry.actions if p.action == "escalate"} == escalations
    # every escalated account has an owner and had no review open: the first escalation of each opens one, and
    # the dry run said so
    first_rule = {}
    for planned in dry.actions:
        if planned.action == "escalate":
            first_rule.setdefault(planned.account, planned.rule)
    assert reviews == set(first_rule.items())
    assert {(p.account, p.rule) for p in dry.actions if p.action == "open_review"} == reviews
    # and again, with everything open: the dry run promises nothing new and the run does nothing new
    again_dry = evaluate(rules_portfolio, SMALL_BATCHES, DEMO_NOW, DEMO_NOW, dry_run=True)
    again = evaluate(rules_portfolio, SMALL_BATCHES, DEMO_NOW, DEMO_NOW)
    assert again_dry.actions == again.actions
    assert not [p for p in again.actions if p.action in ("escalate", "open_review")]
    assert _written(rules_portfolio) == (escalations, reviews)


def _cli(database: Database, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.setenv("PULSECHECK_DATABASE_URL", str(database.engine.url))
    monkeypatch.setenv("PULSECHECK_NOW", DEMO_NOW.isoformat())
    monkeypatch.delenv("PULSECHECK_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["evaluate", *args])
    assert result.exit_code == 0, result.output
    return result


def test_evaluate_prints_counts_per_rule_and_action_and_every_action_with_verbose(
    rules_portfolio: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned = json.loads(_cli(rules_portfolio, monkeypatch, "--dry-run", "--json").stdout)["actions"]
    counts = Counter((a["rule"], a["action"]) for a in planned)
    verbose = _cli(rules_portfolio, monkeypatch, "--dry-run", "--verbose").stdout.splitlines()
    assert verbose[0].startswith("dry run: 12 accounts, ") and f"would apply {len(planned)} action(s)" in verbose[0]
    assert [line.split()[:3] for line in verbose[1:]] == [[a["account"], a["rule"], a["action"]] for a in planned]
    summary = _cli(rules_portfolio, monkeypatch).stdout.splitlines()
    assert f"apply {len(planned)} action(s)" in summary[0]
    by_rule = {line.split()[0]: line.split(None, 1)[1] for line in summary[1:-1]}
    assert set(by_rule) == {rule for rule, _ in counts}
    for (rule, action), count in counts.items():
        assert f"{count} {action}" in by_rule[rule].split(", ")
    assert summary[-1] == "  (--verbose lists every action)"
    assert not any(account in "\n".join(summary) for account, _ in SAMPLE_ESCALATIONS)  # no per-action lines


def test_on_postgres_the_bulk_writes_give_the_same_rows_and_a_rerun_adds_none(pg_database: Database) -> None:
    """The dialect's own statements (RETURNING, ON CONFLICT DO NOTHING, ANALYZE) on the sample portfolio."""
    from pulsecheck.app import install_hooks
    from pulsecheck.config import load_settings
    from pulsecheck.storage.models import AuditEntry, Notification, SchedulerJob
    from tests.integration.conftest import seed_rules_portfolio

    install_hooks(pg_database, load_settings(env={}))  # the commit hooks the CLI runs with, from the start
    seed_rules_portfolio(pg_database)
    dry = evaluate(pg_database, SMALL_BATCHES, DEMO_NOW, DEMO_NOW, dry_run=True)
    real = evaluate(pg_database, SMALL_BATCHES, DEMO_NOW, DEMO_NOW)
    assert dry.actions == real.actions
    escalations, reviews = _written(pg_database)
    assert escalations == SAMPLE_ESCALATIONS and len(reviews) == len({account for account, _ in escalations})

    def counts() -> list[int]:
        with pg_database.transaction() as session:
            return [session.query(model).count() for model in (Notification, SchedulerJob, AuditEntry)]

    told, jobs, chained = counts()
    assert told > 0 and jobs >= len(escalations) + len(reviews)  # a ladder per escalation, reminders per review
    evaluate(pg_database, SMALL_BATCHES, DEMO_NOW, DEMO_NOW)
    assert _written(pg_database) == (escalations, reviews)
    assert counts()[:2] == [told, jobs]  # nothing queued or scheduled twice
    from pulsecheck.workflow.audit import verify_chain

    with pg_database.transaction() as session:
        report = verify_chain(session)
        assert report.ok, report.problems
        assert report.entries == chained + 2  # the second run row started and done, nothing else (bulk rows verify)
