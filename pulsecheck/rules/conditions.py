"""Conditions of the rules language: the facts catalogue, the condition tree and its operators.

Semantics shared by both engines: a condition on a missing fact (None) is false, whatever its operator,
except `missing`; `not` is pushed down to the leaves (De Morgan, with negated operators) before evaluation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pulsecheck.vocab import SEVERITIES

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
# KPI windows over imported readings, and tickets opened in a window (open or closed) by severity: DESIGN.md 6.
KPI_WINDOWED = re.compile(r"^(kpi_change_pct|kpi_avg|kpi_min)\.([a-z][a-z0-9_]*?)_([1-9][0-9]{0,3})d$")
TICKETS_WINDOWED = re.compile(rf"^(tickets(?:_(?:{'|'.join(SEVERITIES)}))?)_([1-9][0-9]{{0,3}})d$")
KPI_PREFIXES = ("kpi.", "kpi_status.")  # facts named after one KPI of the model (beside the windows)
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
    if WINDOWED.match(name) or KPI_FACT.match(name) or GROUP_FACT.match(name) or window_of(name):
        return NUMBER
    if KPI_STATUS_FACT.match(name):
        return STRING
    return None


def window_of(name: str) -> tuple[str, int] | None:
    """(family, days) of a windowed fact: `score_drop_30d` -> ("score_drop", 30), `kpi_avg.logins_30d` ->
    ("kpi_avg.logins", 30), `tickets_high_60d` -> ("tickets_high", 60); None for any other name."""
    for pattern in (WINDOWED, TICKETS_WINDOWED):
        match = pattern.match(name)
        if match:
            return match.group(1), int(match.group(2))
    match = KPI_WINDOWED.match(name)
    if match:
        return f"{match.group(1)}.{match.group(2)}", int(match.group(3))
    return None


def kpi_of(name: str) -> str | None:
    """The KPI a fact is about (`kpi.logins`, `kpi_min.logins_30d`: logins), or None."""
    match = KPI_WINDOWED.match(name)
    if match:
        return match.group(2)
    for prefix in KPI_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
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
