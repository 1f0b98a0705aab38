"""The durable-rules compiler's pure parts: numbers always written as plain decimals, and the `$and`/`$or` group
count that the validator limits (the C core refuses more than 15 per rule with error 113)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pulsecheck.errors import ValidationFailed
from pulsecheck.rules.conditions import MAX_GROUPS, engine_groups
from pulsecheck.rules.durable import compile_rule, compile_rules, encode_fact, plain_number, to_json
from pulsecheck.rules.language import load_rules

EXPONENT = re.compile(r"\d[eE][+-]?\d")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (15, "15"),
        (-3, "-3"),
        (2.5, "2.5"),
        (1e17, "100000000000000000.0"),
        (1.5e16, "15000000000000000.0"),
        (-2e20, "-200000000000000000000.0"),
        (1e-9, "0.000000001"),
        (-1e-7, "-0.0000001"),
        (2**70, "1180591620717411300000.0"),  # beyond int64: written as a double, not wrapped around
        (True, "1"),
    ],
)
def test_numbers_are_plain_decimals(value: Any, text: str) -> None:
    assert plain_number(value) == text
    assert float(text) == float(value)


def test_infinity_is_refused() -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        plain_number(float("inf"))


@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**80), 2**80))
def test_any_number_round_trips_without_an_exponent(value: float | int) -> None:
    text = to_json({"x": [value]})
    assert not EXPONENT.search(text)
    assert json.loads(text)["x"][0] == pytest.approx(float(value), rel=1e-15, abs=0)


def test_a_fact_with_a_huge_arr_and_a_tiny_value_is_sent_without_exponents() -> None:
    text = encode_fact(7, {"arr": 1e17, "kpi.nps": 1e-9, "score": 55.123456, "bucket": "x", "tier": None})
    assert not EXPONENT.search(text)
    assert json.loads(text) == {
        "id": "account:7",
        "kind": "account",
        "arr": 1e17,
        "kpi__nps": 0.0,
        "score": 55.1235,
        "bucket": "x",
    }


def _rules(when: Any) -> str:
    return yaml.safe_dump({"version": 1, "rules": [{"id": "r", "when": when, "then": {"notify": ["owner"]}}]})


def _nested(depth: int) -> Any:
    """`depth` alternating all/any groups, each with one leaf and the next group."""
    node: Any = {"score": {"gte": 1}}
    for i in range(depth):
        node = {"all" if i % 2 else "any": [{"arr": {"gt": i}}, node]}
    return node


def _groups_in(compiled: Any) -> int:
    if isinstance(compiled, dict):
        return sum((key in ("$and", "$or")) + _groups_in(value) for key, value in compiled.items())
    if isinstance(compiled, list):
        return sum(_groups_in(item) for item in compiled)
    return 0


CONDITIONS = [
    {"score": {"gte": 1}},
    {"bucket": {"in": ["healthy", "neutral"]}},
    {"not": {"score": {"between": [1, 5]}}},
    {"not": {"all": [{"score": {"gt": 1}}, {"tier": {"not_in": ["a"]}}]}},
    {"any": [{"all": [{"arr": {"gt": 1}}, {"score": {"lt": 5, "gt": 1}}]}, {"segment": {"eq": "smb"}}]},
    _nested(5),
]


@pytest.mark.parametrize("when", CONDITIONS)
def test_the_validator_counts_groups_exactly_as_the_compiler_writes_them(when: Any) -> None:
    rule = load_rules(_rules(when), "r.yaml").rules[0]
    assert engine_groups(rule.when) == _groups_in(compile_rule(rule))


def test_a_rule_over_the_group_limit_is_refused_with_its_line() -> None:
    assert engine_groups(load_rules(_rules(_nested(MAX_GROUPS - 1)), "r.yaml").rules[0].when) == MAX_GROUPS
    text = _rules(_nested(MAX_GROUPS))
    line = text.splitlines().index("  when:") + 1
    with pytest.raises(ValidationFailed) as caught:
        load_rules(text, "r.yaml")
    assert caught.value.problems == [
        f"r.yaml:{line}: rule r: its condition needs 16 all/any groups (counting in, not_in and between lists and the "
        "rule itself); the durable-rules engine allows at most 15 (error 113): flatten the condition or split the rule"
    ]


def test_compiled_rulesets_carry_no_exponent() -> None:
    text = "version: 1\nrules:\n  - id: r\n    when: {arr: {gte: 100000000000000.5}, kpi.nps: {gt: 0.00001}}\n"
    text += "    then: {notify: [owner]}\n"
    (_, ruleset), *_ = compile_rules(load_rules(text, "r.yaml"))
    assert not EXPONENT.search(ruleset)
    assert {"$gte": {"arr": 100000000000000.5}} in json.loads(ruleset)["r"]["all"][0]["m"]["$and"][1]["$and"]
