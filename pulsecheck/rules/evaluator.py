"""The plain-Python evaluator of the rules language: `rules explain`, backtests and the reference for durable-rules."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pulsecheck.rules.conditions import BOOLEAN, PRECISION, All, AnyOf, Leaf, Node, fact_type, leaves, normalize
from pulsecheck.rules.language import Rule, RulesFile


def clean_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Facts as both engines see them: numbers rounded to PRECISION decimals; None, NaN and infinities are missing."""
    result: dict[str, Any] = {}
    for name, value in facts.items():
        if isinstance(value, float):
            value = round(value, PRECISION) if math.isfinite(value) else None
        result[name] = value
    return result


def test_leaf(leaf: Leaf, facts: Mapping[str, Any]) -> bool:
    """One condition; a missing fact makes everything false except `missing`."""
    value = facts.get(leaf.fact)
    if leaf.op == "missing":
        return value is None
    if value is None:
        return False
    if fact_type(leaf.fact) == BOOLEAN:
        value = bool(value)
    op, expected = leaf.op, leaf.value
    if op == "exists":
        return True
    if op == "eq":
        return bool(value == expected)
    if op == "ne":
        return bool(value != expected)
    if op == "in":
        return value in expected
    if op == "not_in":
        return value not in expected
    if op == "between":
        return bool(expected[0] <= value <= expected[1])
    return bool(
        {"lt": value < expected, "lte": value <= expected, "gt": value > expected, "gte": value >= expected}[op]
    )


def test_node(node: Node, facts: Mapping[str, Any]) -> bool:
    """A normalized condition tree (no `Not`)."""
    if isinstance(node, Leaf):
        return test_leaf(node, facts)
    if isinstance(node, All):
        return all(test_node(item, facts) for item in node.items)
    if isinstance(node, AnyOf):
        return any(test_node(item, facts) for item in node.items)
    return test_node(normalize(node), facts)


def matches(rule: Rule, facts: Mapping[str, Any]) -> bool:
    """Does `rule` fire for an account with these facts?"""
    return test_node(normalize(rule.when), clean_facts(facts))


def evaluate_plain(
    rules: Iterable[Rule], facts_by_account: Iterable[tuple[int, Mapping[str, Any]]]
) -> list[tuple[int, str]]:
    """Firings (account, rule id), sorted: the same contract as the durable-rules engine."""
    compiled = [(rule.id, normalize(rule.when)) for rule in rules]
    fired: list[tuple[int, str]] = []
    for account, facts in facts_by_account:
        cleaned = clean_facts(facts)
        fired.extend((account, rule_id) for rule_id, node in compiled if test_node(node, cleaned))
    return sorted(fired)


@dataclass(frozen=True)
class LeafResult:
    """One condition of `explain`: the fact's actual value against the expected one, and the truth."""

    fact: str
    op: str
    expected: Any
    actual: Any
    result: bool


def explain(rules_file: RulesFile, facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per rule: whether it fires and every condition with the fact's value and its truth."""
    cleaned = clean_facts(facts)
    report = []
    for rule in rules_file.rules:
        conditions = [
            LeafResult(leaf.fact, leaf.op, leaf.value, cleaned.get(leaf.fact), test_leaf(leaf, cleaned))
            for leaf in leaves(normalize(rule.when))
        ]
        report.append(
            {
                "rule": rule.id,
                "description": rule.description,
                "fires": matches(rule, facts),
                "conditions": [c.__dict__ for c in conditions],
            }
        )
    return report


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def render_reason(template: str, facts: Mapping[str, Any]) -> str:
    """Fill `{fact}` placeholders with values (never evaluates anything; unknown names stay as written)."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in facts:
            return match.group(0)
        value = facts[name]
        if isinstance(value, float):
            return f"{value:g}"
        return "-" if value is None else str(value)

    return _PLACEHOLDER.sub(fill, template)
