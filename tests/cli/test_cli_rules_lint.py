"""`rules lint FILE` lists what validates but cannot do what was meant and exits 1 when there is any; `rules
validate` prints the same as `warning:` lines and still exits 0."""

from __future__ import annotations

from pathlib import Path

from pulsecheck.demo import examples_dir
from tests.conftest import Run, error, ok

LINTED = """\
version: 1
rules:
  - id: broad
    when: {score: {lt: 40}}
    then: {notify: [owner]}
  - id: narrow
    when:
      all:
        - score: {lt: 30}
        - open_complaints: {gt: 0}
    then: {notify: [owner]}
  - id: never
    when:
      score: {lt: 30, gt: 50}
    then: {escalate: {severity: high}}
  - id: above-100
    when: {score: {gt: 100}}
    then: {escalate: {severity: low}}
"""


def test_lint_and_validate_report_the_same_findings(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(LINTED)
    expected = [
        f"warning: {path}:6: rule narrow: shadowed by rule broad (line 3): the same actions, and its conditions "
        "hold whenever this rule's do",
        f"warning: {path}:12: rule never: contradictory conditions in one `all`: score lt 30 and score gt 50 can "
        "never hold together",
        f"warning: {path}:16: rule above-100: score gt 100 can never hold: score is a score (0 to 100)",
    ]
    linted = run("rules", "lint", str(path))
    assert error(linted, 1, stdout=None) == f"error: {path}: 3 lint finding(s)"
    assert linted.stdout.splitlines() == expected
    validated = run("rules", "validate", str(path))
    assert validated.exit_code == 0
    assert validated.stdout == f"{path}: ok (4 rules, 1 durable-rules ruleset(s), tried in the engine)\n"
    assert validated.stderr.splitlines() == expected


def test_the_sample_rules_lint_clean(run: Run) -> None:
    rules = examples_dir() / "rules.yaml"
    assert ok(run("rules", "lint", str(rules))) == f"{rules}: no lint findings (8 rules)\n"


def test_lint_of_an_invalid_file_is_bad_input(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nrules:\n  - id: x\n    when: {scroe: {gt: 1}}\n    then: {notify: [owner]}\n")
    result = run("rules", "lint", str(path))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[0] == f"{path}:4: unknown fact 'scroe' (did you mean 'score'?)"
