"""`rules test FILE [--fixtures DIR]`: the sample rules' fixtures pass (the CI check of the shipped rules); a
failing case names the rule and each condition with the fact's value (exit 1); a bad fixture file is one line
per problem (exit 2). No database is needed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pulsecheck.cli import cli
from pulsecheck.demo import examples_dir
from tests.conftest import error, ok

CHURNZERO = """\
version: 1
rules:
  - id: logins-down-40
    description: Logins in the past month down 40% or more against the month before
    when:
      kpi_change_pct.logins_30d: {lte: -40}
    then:
      escalate: {severity: medium, reason: "logins {kpi_change_pct.logins_30d}% in 30 days"}
  - id: high-tickets-60d
    description: More than 2 high-priority tickets in the last 60 days
    when:
      tickets_high_60d: {gt: 2}
    then:
      notify: {roles: [owner], message: "{tickets_high_60d} high tickets in 60 days"}
"""


def rules_test(*args: str) -> Result:
    return CliRunner().invoke(cli, ["rules", "test", *args], catch_exceptions=False)


def test_the_sample_rules_pass_their_fixtures() -> None:
    rules = examples_dir() / "rules.yaml"
    fixtures = examples_dir() / "rules.tests"
    count = sum(text.count("\n  - name: ") for text in (p.read_text() for p in fixtures.glob("*.yaml")))
    assert count >= 14
    assert ok(rules_test(str(rules))) == (
        f"{rules}: {count} case(s) in 2 fixture file(s) of {fixtures} passed (durable-rules)\n"
    )
    listed = ok(rules_test(str(rules), "--verbose")).splitlines()
    assert len(listed) == count + 1 and all(line.startswith("ok   ") for line in listed[:-1])


@pytest.fixture
def churnzero(tmp_path: Path) -> Path:
    path = tmp_path / "churnzero.yaml"
    path.write_text(CHURNZERO)
    (tmp_path / "churnzero.tests").mkdir()
    return path


def test_churnzero_examples_with_their_fixtures(churnzero: Path) -> None:
    (churnzero.parent / "churnzero.tests" / "cases.yaml").write_text(
        "cases:\n"
        "  - name: logins 1000 -> 550 is -45 %\n"
        "    facts: {kpi_change_pct.logins_30d: -45, tickets_high_60d: 3}\n"
        "    fires: [logins-down-40, high-tickets-60d]\n"
        "    actions:\n"
        "      - escalate: {severity: medium, priority: P3, reason: logins -45% in 30 days}\n"
        "      - notify: {roles: [owner], message: 3 high tickets in 60 days}\n"
        "  - name: exactly -40 % counts; two high tickets do not\n"
        "    facts: {kpi_change_pct.logins_30d: -40, tickets_high_60d: 2}\n"
        "    fires: [logins-down-40]\n"
        "  - name: no readings a month ago, no change to compare\n"
        "    facts: {tickets_high_60d: 0}\n"
        "    fires: []\n"
    )
    assert ok(rules_test(str(churnzero))).startswith(f"{churnzero}: 3 case(s) in 1 fixture file(s) of ")


def test_a_failing_case_names_the_rule_and_each_condition_with_its_value(churnzero: Path) -> None:
    (churnzero.parent / "churnzero.tests" / "cases.yaml").write_text(
        "cases:\n"
        "  - name: fine\n"
        "    facts: {tickets_high_60d: 3}\n"
        "    fires: [high-tickets-60d]\n"
        "  - name: two is not more than two\n"
        "    facts: {tickets_high_60d: 2, kpi_change_pct.logins_30d: -50}\n"
        "    fires: [high-tickets-60d]\n"
        "  - name: wrong severity\n"
        "    facts: {kpi_change_pct.logins_30d: -41.5}\n"
        "    fires: [logins-down-40]\n"
        "    actions: [{escalate: {severity: high}}]\n"
    )
    result = rules_test(str(churnzero))
    cases = churnzero.parent / "churnzero.tests" / "cases.yaml"
    assert error(result, 1, stdout=None) == (
        f"error: {churnzero}: 2 of 3 case(s) in 1 fixture file(s) of {cases.parent} failed"
    )
    assert result.stdout.splitlines() == [
        f"FAIL {cases}:5 two is not more than two",
        "     logins-down-40 fired; the case does not expect it:",
        "       true  kpi_change_pct.logins_30d lte -40 (actual -50)",
        "     expected high-tickets-60d to fire; it did not:",
        "       false tickets_high_60d gt 2 (actual 2)",
        f"FAIL {cases}:8 wrong severity",
        "     expected action escalate {severity: 'high'}: no action matches",
        "     the firing rules ask for:",
        "       logins-down-40: escalate {severity: 'medium', reason: 'logins -41.5% in 30 days', priority: 'P3'}"
        "  (not expected)",
    ]


def test_a_bad_fixture_file_is_bad_input_with_lines(churnzero: Path) -> None:
    cases = churnzero.parent / "churnzero.tests" / "cases.yaml"
    cases.write_text(
        "cases:\n"
        "  - name: typo\n"
        "    facts: {tickets_hihg_60d: 3, kpi_change_pct.logins_30d: '-40'}\n"
        "    fires: [high-ticket-60d]\n"
        "    actions: [escalat]\n"
    )
    result = rules_test(str(churnzero))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{cases}:3: unknown fact 'tickets_hihg_60d' (did you mean 'tickets_high_60d'?)",
        f"{cases}:3: kpi_change_pct.logins_30d is a number, got '-40'",
        f"{cases}:4: no rule 'high-ticket-60d' in the rules file (did you mean 'high-tickets-60d'?)",
        f"{cases}:5: an action is one of escalate, open_review, notify, flag_deviation (did you mean 'escalate'?)",
        f"error: {cases.parent}: 4 problem(s)",
    ]
    cases.write_text("cases: [\n")
    assert error(rules_test(str(churnzero)), 2).startswith(f"error: {cases}:2: invalid YAML")


def test_fixtures_elsewhere_and_none_at_all(churnzero: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(examples_dir() / "rules.tests", elsewhere)
    copy = tmp_path / "sample.yaml"
    shutil.copy(examples_dir() / "rules.yaml", copy)
    assert " passed " in ok(rules_test(str(copy), "--fixtures", str(elsewhere)))
    assert error(rules_test(str(copy)), 2) == (
        f"error: {tmp_path / 'sample.tests'}: no fixtures directory (create it with a *.yaml file of cases, "
        "or --fixtures)"
    )
    assert (
        error(rules_test(str(churnzero)), 2)
        == f"error: {churnzero.parent / 'churnzero.tests'}: no fixture files (*.yaml)"
    )
