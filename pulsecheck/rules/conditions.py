"""Conditions of the rules language: the facts catalogue, the condition tree and its operators.

Semantics shared by both engines: a condition on a missing fact (None) is false, whatever its operator,
except `missing`; `not` is pushed down to the leaves (De Morgan, with negated operators) before evaluation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

NUMBER, STRING, BOOLEAN = "number", "string", "boolean"
FACTS: dict[str, str] = {
    "score": NUMBER,
    "bucket": STRING,
    "low_score_streak": NUMBER,
    "days_to_renewal": NUMBER,
    "days_since_contract": NUMBER,
    "days_since_last_review": NUMBER,
    "open_complaints": NUMBER,
    "open_billing_issues": NUMBER,
    "open_blockers": NUMBER,
    "stale_inputs": NUMBER,
    "missing_inputs": NUMBER,
    "segment": STRING,
    "tier": STRING,
    "arr": NUMBER,
    "stage": STRING,
    "has_open_review": BOOLEAN,
    "open_escalations": NUMBER,
    "concerns": NUMBER,  # KPIs rated an area of concern in the latest snapshot
}
WINDOWED = re.compile(r"^(score_change|score_drop|max_score|open_tickets|open_high_tickets)_(\d+)d$")
KPI_FACT = re.compile(r"^kpi\.[a-z][a-z0-9_]*$")
KPI_STATUS_FACT = re.compile(r"^kpi_status\.[a-z][a-z0-9_]*$")  # concern | neutral | strength
GROUP_FACT = re.compile(r"^group\.[a-z][a-z0-9_]*$")  # a group's subscore
OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "between", "exists", "missing")
NEGATED = {
    "eq": "ne",
    "ne": "eq",
    "lt": "gte",
    "gte": "lt",
    "lte": "gt",
    "gt": "lte",
    "in": "not_in",
    "not_in": "in",
    "exists": "missing",
    "missing": "exists",
}
PRECISION = 4  # numbers are rounded to 4 decimals for both engines (durable parses plain decimals only)
MAX_GROUPS = 15  # durable-rules refuses a pattern with more `$and`/`$or` objects (error 113), measured


@dataclass(frozen=True)
class Leaf:
    """One condition: `fact: {op: value}`."""

    fact: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class All:
    """Every item holds (`all`)."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one item holds (`any`)."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """The item does not hold (`not`); `normalize` pushes it down to the leaves."""

    item: Node


Node = Leaf | All | AnyOf | Not


def fact_type(name: str) -> str | None:
    """The type of a catalogue fact, or None for an unknown name."""
    if name in FACTS:
        return FACTS[name]
    if WINDOWED.match(name) or KPI_FACT.match(name) or GROUP_FACT.match(name):
        return NUMBER
    if KPI_STATUS_FACT.match(name):
        return STRING
    return None


def leaves(node: Node) -> list[Leaf]:
    """Every leaf of a condition tree, in order."""
    if isinstance(node, Leaf):
        return [node]
    if isinstance(node, Not):
        return leaves(node.item)
    return [leaf for item in node.items for leaf in leaves(item)]


def engine_groups(node: Node) -> int:
    """How many `$and`/`$or` objects the durable compiler writes for a condition, including the rule's own `$and`.

    Groups are all/any (after `not` is pushed down) and the lists of in, not_in and between; plain leaves are free.
    """

    def count(item: Node) -> int:
        if isinstance(item, All | AnyOf):
            return 1 + sum(count(child) for child in item.items)
        if isinstance(item, Leaf):
            return 1 if item.op in ("in", "not_in", "between") else 0
        return count(normalize(item))

    return 1 + count(normalize(node))


def normalize(node: Node, negate: bool = False) -> Node:
    """Negation pushed down to the leaves (what both engines evaluate)."""
    if isinstance(node, Not):
        return normalize(node.item, not negate)
    if isinstance(node, All | AnyOf):
        items = tuple(normalize(item, negate) for item in node.items)
        flip = isinstance(node, All) == negate
        return AnyOf(items) if flip else All(items)
    if not negate:
        return node
    if node.op == "between":
        low, high = node.value
        return AnyOf((Leaf(node.fact, "lt", low), Leaf(node.fact, "gt", high)))
    return Leaf(node.fact, NEGATED[node.op], node.value)
