"""`rules test`: run fixture cases through the durable-rules engine, as `evaluate` does, and say for each case
that fails which rule differs and why: every condition of that rule, true or false, with the fact's value.

Actions are what the firing rules ask for, with their settings as the rules write them, texts (reason, message,
detail) filled in with the case's facts, and escalate's priority from the `[priority]` matrix when the rule sets
none. What depends on the database (one open escalation per account and rule, cooldown, an owner to open a
review for) is not part of a case: `evaluate --dry-run` and `rules activate` show that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pulsecheck.rules import durable
from pulsecheck.rules.evaluator import evaluate_plain, explain, render_reason
from pulsecheck.rules.fixtures import Case, Expected
from pulsecheck.rules.language import Rule, RulesFile
from pulsecheck.rules.priority import PriorityMatrix
from pulsecheck.timeutil import format_duration

TEXTS = {"escalate": "reason", "notify": "message", "flag_deviation": "detail"}  # filled in with the facts


@dataclass(frozen=True)
class Asked:
    """One action a firing rule asks for, its settings as they will be used."""

    rule: str
    kind: str
    params: Mapping[str, Any]


@dataclass
class Outcome:
    """One case run: the rules that fired, and what differs from the fixture (empty: it passed)."""

    case: Case
    fired: list[str]
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def asked(rule: Rule, facts: Mapping[str, Any], priority: PriorityMatrix) -> list[Asked]:
    """The actions a rule that fired asks for, for an account with these facts."""
    found = []
    for action in rule.actions:
        params = dict(action.params)
        text = TEXTS.get(action.kind)
        if text:
            params[text] = render_reason(params.get(text) or rule.description or rule.id, facts)
        if action.kind == "escalate" and not params.get("priority"):
            params["priority"] = priority.priority(params["severity"], facts)
        found.append(Asked(rule.id, action.kind, params))
    return found


def run_cases(rules: RulesFile, cases: Sequence[Case], priority: PriorityMatrix) -> list[Outcome]:
    """Every case through durable-rules (one worker process, as `evaluate` runs it) and, as a cross-check, the
    plain evaluator; one outcome per case, in order."""
    facts = [(number, dict(case.facts)) for number, case in enumerate(cases, 1)]
    engine = durable.evaluate(rules, facts, workers=1)
    plain = evaluate_plain(rules.rules, facts)
    order = {rule.id: index for index, rule in enumerate(rules.rules)}
    by_id = {rule.id: rule for rule in rules.rules}
    outcomes = []
    for number, case in enumerate(cases, 1):
        fired = sorted((r for a, r in engine if a == number), key=order.__getitem__)
        outcome = Outcome(case, fired)
        reference = sorted((r for a, r in plain if a == number), key=order.__getitem__)
        if reference != fired:
            outcome.problems.append(
                f"the durable-rules engine fired {fired or 'nothing'} but the plain evaluator {reference or 'nothing'}"
            )
        outcome.problems += _firing_problems(rules, case, fired)
        if case.actions is not None and not outcome.problems:
            done = [item for rule_id in fired for item in asked(by_id[rule_id], case.facts, priority)]
            outcome.problems += action_problems(case.actions, done)
        outcomes.append(outcome)
    return outcomes


def _firing_problems(rules: RulesFile, case: Case, fired: list[str]) -> list[str]:
    """Each rule that fired and should not have, or should have and did not, with its conditions."""
    expected, got = set(case.fires), set(fired)
    problems = []
    for report in explain(rules, case.facts):
        rule_id = report["rule"]
        if rule_id in expected - got:
            problems.append(f"expected {rule_id} to fire; it did not:")
        elif rule_id in got - expected:
            problems.append(f"{rule_id} fired; the case does not expect it:")
        else:
            continue
        problems += [_condition(c) for c in report["conditions"]]
    return problems


def _condition(item: Mapping[str, Any]) -> str:
    actual = "missing" if item["actual"] is None else repr(item["actual"])
    expected = "" if item["op"] in ("exists", "missing") else f" {_value(item['expected'])}"
    return f"  {'true ' if item['result'] else 'false'} {item['fact']} {item['op']}{expected} (actual {actual})"


def action_problems(expected: Sequence[Expected], done: Sequence[Asked]) -> list[str]:
    """What differs between the expected actions and those asked for: each expected one matched to a distinct
    action of its kind (and rule, if named) whose settings include the expected ones."""
    left = list(done)
    problems = []
    for want in expected:
        match = next((item for item in left if _matches(want, item)), None)
        if match is None:
            problems.append(f"expected action {_describe(want.rule, want.kind, want.params)}: no action matches")
        else:
            left.remove(match)
    if problems or left:
        problems.append("the firing rules ask for:" if done else "the firing rules ask for no action")
        problems += [
            f"  {_describe(item.rule, item.kind, item.params)}{'  (not expected)' if item in left else ''}"
            for item in done
        ]
    return problems


def _matches(want: Expected, item: Asked) -> bool:
    if want.kind != item.kind or (want.rule is not None and want.rule != item.rule):
        return False
    for key, value in want.params.items():
        actual = item.params.get(key)
        if isinstance(value, list):
            value = tuple(value)
        if key not in item.params or actual != value:
            return False
    return True


def _describe(rule: str | None, kind: str, params: Mapping[str, Any]) -> str:
    inner = ", ".join(f"{key}: {_value(value)}" for key, value in params.items())
    return f"{rule + ': ' if rule else ''}{kind} {{{inner}}}"


def _value(value: Any) -> str:
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)
