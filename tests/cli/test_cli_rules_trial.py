"""`rules validate` and `rules activate` refuse a rules file the engine cannot evaluate, with the rule's id and
line, by the same checks: a NaN literal, and conditions that make too many alternatives true at once (error 303).
A file whose many alternatives can never be true together is accepted and evaluates."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from pulsecheck.rules import durable
from pulsecheck.rules.language import load_rules_file
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Escalation, Ruleset


def rules_file(path: Path, *rules: str) -> str:
    path.write_text("version: 1\nrules:\n" + "".join(rules))
    return str(path)


def any_of(rule_id: str, conditions: list[str], severity: str = "high") -> str:
    items = "".join(f"        - {c}\n" for c in conditions)
    return f"  - id: {rule_id}\n    when:\n      any:\n{items}    then: {{escalate: {{severity: {severity}}}}}\n"


FINE = "  - id: fine\n    when: {score: {lt: 40}}\n    then: {escalate: {severity: low}}\n"
NAN = "  - id: not-a-number\n    when:\n      score: {gt: .nan}\n    then: {escalate: {severity: high}}\n"
SEVENTY_TRUE = any_of("seventy", [f"score: {{gte: {-i}}}" for i in range(70)])  # all true for any score >= 0


def active_rulesets(database: Database) -> int:
    with database.transaction() as session:
        return session.scalar(select(func.count()).select_from(Ruleset)) or 0


def refused_by_both(run, factory, database: Database, path: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    """Both commands exit 2 with the same problem line on stderr, and nothing is activated."""
    factory.user("olga", "ops")
    checked = run("rules", "validate", path)
    activated = run("--as", "olga", "rules", "activate", path)
    for result in (checked, activated):
        assert result.exit_code == 2, result.output
        assert expected in result.stderr
        assert "Traceback" not in result.output
    assert [line for line in checked.stderr.splitlines() if expected in line] == [
        line for line in activated.stderr.splitlines() if expected in line
    ]
    assert active_rulesets(database) == 0


def test_a_nan_literal_is_refused_naming_its_line(run, factory, database, tmp_path):
    path = rules_file(tmp_path / "nan.yaml", FINE, NAN)  # the YAML reader refuses it before the rule is built
    refused_by_both(run, factory, database, path, "nan.yaml:8: '.nan' is not a finite number")


def test_seventy_alternatives_true_at_once_are_refused_by_a_trial_in_the_engine(run, factory, database, tmp_path):
    path = rules_file(tmp_path / "many.yaml", FINE, SEVENTY_TRUE)
    refused_by_both(
        run, factory, database, path, "many.yaml:6: rule seventy: the durable-rules engine cannot evaluate it"
    )
    assert "error 303" in run("rules", "validate", path).stderr


def test_two_groups_of_an_all_add_up_to_too_many(run, factory, database, tmp_path):
    conditions = [f"score: {{gte: {-i}}}" for i in range(40)]
    others = [f"arr: {{gte: {-i}}}" for i in range(30)]
    rule = (
        "  - id: crossed\n    when:\n      all:\n        - any:\n"
        + "".join(f"          - {c}\n" for c in conditions)
        + "        - any:\n"
        + "".join(f"          - {c}\n" for c in others)
        + "    then: {notify: [owner]}\n"
    )
    path = rules_file(tmp_path / "crossed.yaml", rule)
    refused_by_both(run, factory, database, path, "crossed.yaml:3: rule crossed: the durable-rules engine cannot")


def test_seventy_alternatives_that_exclude_each_other_are_accepted_and_evaluate(run, factory, database, tmp_path):
    # `segment` has one value per account: at most one of these is ever true, which the engine handles.
    path = rules_file(
        tmp_path / "segments.yaml", any_of("segments", [f"segment: {{eq: s{i}}}" for i in range(69)] + ["arr: {gt: 5}"])
    )
    assert run("rules", "validate", path).exit_code == 0
    factory.team()  # ACME: enterprise, arr 120000
    factory.account("S7", owner="bob", segment="s7", arr=1.0)
    factory.account("QUIET", owner="bob", segment="other", arr=1.0)
    assert run("--as", "olga", "rules", "activate", path).exit_code == 0
    result = run("evaluate")
    assert result.exit_code == 0, result.output
    with database.transaction() as session:
        opened = sorted(e.account.external_id for e in session.scalars(select(Escalation)))
    assert opened == ["ACME", "S7"]


def test_rules_fine_alone_but_too_many_together_go_to_separate_rulesets(tmp_path):
    def crossed(rule_id: str, low: int) -> str:
        first = "".join(f"          - score: {{gte: {low - i}}}\n" for i in range(30))
        second = "".join(f"          - arr: {{gte: {low - i}}}\n" for i in range(30))
        return (
            f"  - id: {rule_id}\n    when:\n      all:\n        - any:\n{first}        - any:\n{second}"
            "    then: {notify: [owner]}\n"
        )

    path = rules_file(tmp_path / "pair.yaml", crossed("a", 0), crossed("b", 100))
    parsed = load_rules_file(path)
    assert [[rule.id for rule in shard] for shard in durable.shard_rules(parsed)] == [["a"], ["b"]]
    from pulsecheck.rules.trial import trial

    assert trial(parsed) == []  # together in one ruleset, measured: error 303
