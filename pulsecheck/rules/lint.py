"""`rules lint`: rules that validate but cannot do what their author meant.

- contradictory conditions in one `all` (`score: {lt: 30}` and `score: {gt: 50}`): the rule never fires;
- a threshold that can never hold given the fact's known range (a score above 100, a count below 0);
- a rule shadowed by another with the same actions whose conditions are a subset of its own (weaker or equal):
  whenever it fires, the other fires too.

Reasoning is per fact over the leaves of an `all` (after `not` is pushed down), with the semantics both engines
share: any condition but `missing` needs the fact to be there. Counts and days are whole numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pulsecheck.rules.conditions import BOOLEAN, NUMBER, All, AnyOf, Leaf, Node, Not, fact_type, normalize, window_of
from pulsecheck.rules.language import Rule, RulesFile

COUNTS = frozenset(
    {"low_score_streak", "open_complaints", "open_billing_issues", "open_blockers", "stale_inputs",
     "missing_inputs", "open_escalations", "open_tickets", "open_high_tickets", "concerns"}
)  # fmt: skip
MAX_ENUMERATED = 1000  # whole numbers in a bounded range are checked one by one up to this many


@dataclass(frozen=True)
class Range:
    """What a fact can be: its bounds, whether it is a whole number, and how to say so."""

    low: float
    high: float
    integer: bool
    words: str


def known_range(fact: str) -> Range | None:
    """The range a fact's values always lie in, when it is known."""
    window = window_of(fact)
    family = window[0] if window else fact
    if family in ("score", "max_score") or fact.startswith("group."):
        return Range(0, 100, False, "a score (0 to 100)")
    if family == "score_drop":
        return Range(0, 100, False, "a fall in score points (0 to 100)")
    if family == "score_change":
        return Range(-100, 100, False, "a change in score points (-100 to 100)")
    if family in COUNTS or family.startswith("tickets"):
        return Range(0, math.inf, True, "a count (a whole number, 0 or more)")
    if family == "days_since_last_review":
        return Range(0, math.inf, True, "a number of days (a whole number, 0 or more)")
    if family in ("days_to_renewal", "days_since_contract"):
        return Range(-math.inf, math.inf, True, "a number of days (a whole number)")
    if family == "arr":
        return Range(0, math.inf, False, "an amount (0 or more)")
    return None


@dataclass
class Domain:
    """The values of one fact that satisfy a set of conditions on it (or the fact missing, for `missing`)."""

    kind: str
    integer: bool = False
    needs_value: bool = False  # a condition other than `missing`: the fact must be there
    needs_missing: bool = False
    low: float = -math.inf
    low_open: bool = False
    high: float = math.inf
    high_open: bool = False
    allowed: frozenset[Any] | None = None
    excluded: set[Any] = field(default_factory=set)

    def bound(self, value: float, strict: bool, above: bool) -> None:
        """Values must be above (or below) `value`, strictly or not."""
        if above and (value > self.low or (value == self.low and strict)):
            self.low, self.low_open = value, strict
        if not above and (value < self.high or (value == self.high and strict)):
            self.high, self.high_open = value, strict

    def add(self, leaf: Leaf) -> None:
        """Narrow by one condition."""
        op, value = leaf.op, leaf.value
        if op == "missing":
            self.needs_missing = True
            return
        self.needs_value = True
        if op in ("eq", "in"):
            values = frozenset([value] if op == "eq" else value)
            self.allowed = values if self.allowed is None else self.allowed & values
        elif op in ("ne", "not_in"):
            self.excluded |= {value} if op == "ne" else set(value)
        elif op in ("lt", "lte", "gt", "gte"):
            self.bound(value, op in ("lt", "gt"), above=op in ("gt", "gte"))
        elif op == "between":
            self.bound(value[0], False, above=True)
            self.bound(value[1], False, above=False)

    def narrowed(self, known: Range | None) -> Domain:
        """A copy narrowed to a known range."""
        copy = replace(self, excluded=set(self.excluded))
        if known is not None:
            copy.integer = known.integer
            copy.bound(known.low, False, above=True)
            copy.bound(known.high, False, above=False)
        return copy

    def empty(self) -> bool:
        """True when nothing satisfies every condition: no value, nor the fact missing."""
        if self.needs_missing:
            return self.needs_value
        if self.kind == BOOLEAN:
            return not ((self.allowed if self.allowed is not None else {True, False}) - self.excluded)
        if self.kind != NUMBER:
            return self.allowed is not None and not (self.allowed - self.excluded)
        if self.allowed is not None:
            return not [v for v in self.allowed if self._fits(v) and v not in self.excluded]
        return self._interval_empty()

    def _fits(self, value: float) -> bool:
        above = value > self.low or (value == self.low and not self.low_open)
        below = value < self.high or (value == self.high and not self.high_open)
        return above and below and (not self.integer or float(value).is_integer())

    def _interval_empty(self) -> bool:
        low, high = self.low, self.high
        if self.integer:  # the whole numbers within the bounds
            if math.isfinite(low):
                low = math.floor(low) + 1 if self.low_open and float(low).is_integer() else math.ceil(low)
            if math.isfinite(high):
                high = math.ceil(high) - 1 if self.high_open and float(high).is_integer() else math.floor(high)
            if low > high:
                return True
            if high - low < MAX_ENUMERATED:
                return all(v in self.excluded for v in range(int(low), int(high) + 1))
            return False
        if low > high or (low == high and (self.low_open or self.high_open)):
            return True
        return low == high and low in self.excluded


def domain_of(fact: str, conditions: Iterable[Leaf], known: Range | None = None) -> Domain:
    """The values of `fact` satisfying every condition (within `known`, when given)."""
    domain = Domain(fact_type(fact) or NUMBER)
    for leaf in conditions:
        domain.add(leaf)
    return domain.narrowed(known)


@dataclass(frozen=True)
class Finding:
    """One lint finding: the rule, its line, and what is wrong."""

    line: int
    rule: str
    message: str

    def text(self, source: str) -> str:
        return f"{source}:{self.line}: rule {self.rule}: {self.message}"


def lint(rules: RulesFile) -> list[Finding]:
    """Every finding of a rules file, in line order."""
    found: list[Finding] = []
    for rule in rules.rules:
        found += [Finding(rule.line, rule.id, message) for message in condition_problems(rule.when)]
    never = {finding.rule for finding in found}  # a rule that cannot fire "implies" anything: not compared
    found += shadowed([rule for rule in rules.rules if rule.id not in never])
    return sorted(found, key=lambda f: f.line)


def condition_problems(when: Node) -> list[str]:
    """Leaves that can never hold given their fact's range, and the facts of an `all` whose conditions
    contradict each other (or the range)."""
    problems: list[str] = []
    tree = normalize(when)
    single = set()
    for leaf in _leaves(tree):
        known = known_range(leaf.fact)
        if leaf not in single and domain_of(leaf.fact, [leaf], known).empty():
            single.add(leaf)
            problems.append(f"{_text(leaf)} can never hold: {leaf.fact} is {known.words if known else '?'}")
    for group in _all_groups(tree):
        for fact, conditions in _by_fact(group).items():
            if len(conditions) < 2 or single & set(conditions):
                continue
            known = known_range(fact)
            said = " and ".join(_text(leaf) for leaf in conditions)
            if domain_of(fact, conditions).empty():
                problems.append(f"contradictory conditions in one `all`: {said} can never hold together")
            elif domain_of(fact, conditions, known).empty() and known is not None:
                problems.append(f"{said} can never hold together: {fact} is {known.words}")
    return problems


def shadowed(rules: Sequence[Rule]) -> list[Finding]:
    """Rules whose every firing another rule with the same actions makes too (its conditions are a subset of
    theirs, or weaker); of two rules with the same conditions, the later one is reported."""
    alike: dict[str, list[tuple[int, Rule]]] = {}  # only rules with the same actions are compared
    for index, rule in enumerate(rules):
        alike.setdefault(repr(rule.actions), []).append((index, rule))
    found = []
    for group in alike.values():
        for later, rule in group:
            for earlier, other in group:
                if other is rule or not implies(rule.when, other.when):
                    continue
                same = implies(other.when, rule.when)
                if same and earlier > later:
                    continue  # equivalent: the later of the two is the one reported
                said = (
                    f"duplicates rule {other.id} (line {other.line}): the same conditions and actions"
                    if same
                    else f"shadowed by rule {other.id} (line {other.line}): the same actions, and its conditions "
                    "hold whenever this rule's do"
                )
                found.append(Finding(rule.line, rule.id, said))
                break
    return found


def implies(when: Node, other: Node) -> bool:
    """Whether `when` holding means `other` holds (conservatively: False when it cannot tell)."""
    mine = _conjuncts(normalize(when))
    leaves = [item for item in mine if isinstance(item, Leaf)]
    for item in _conjuncts(normalize(other)):
        if item in mine:
            continue
        if not isinstance(item, Leaf):
            return False
        facts = [leaf for leaf in leaves if leaf.fact == item.fact]
        negated = normalize(Not(item))
        alternatives = negated.items if isinstance(negated, AnyOf) else (negated,)
        known = known_range(item.fact)
        for alternative in alternatives:
            if not isinstance(alternative, Leaf) or not domain_of(item.fact, [*facts, alternative], known).empty():
                return False
        if item.op != "missing" and not facts:
            return False  # without a condition of its own on the fact, it may be missing
    return True


def _conjuncts(node: Node) -> list[Node]:
    if isinstance(node, All):
        return [part for item in node.items for part in _conjuncts(item)]
    return [node]


def _leaves(node: Node) -> list[Leaf]:
    if isinstance(node, Leaf):
        return [node]
    assert isinstance(node, All | AnyOf), "normalized"
    return [leaf for item in node.items for leaf in _leaves(item)]


def _all_groups(node: Node) -> list[list[Node]]:
    """Every `all` of a normalized tree as its conjuncts (an `all` inside an `all` is part of its parent)."""
    groups: list[list[Node]] = []

    def visit(item: Node, inside_all: bool) -> None:
        if isinstance(item, All):
            if not inside_all:
                groups.append(_conjuncts(item))
            for child in item.items:
                visit(child, True)
        elif isinstance(item, AnyOf):
            for child in item.items:
                visit(child, False)

    visit(node, False)
    return groups


def _by_fact(group: list[Node]) -> dict[str, list[Leaf]]:
    found: dict[str, list[Leaf]] = {}
    for item in group:
        if isinstance(item, Leaf):
            found.setdefault(item.fact, []).append(item)
    return found


def _text(leaf: Leaf) -> str:
    if leaf.op in ("exists", "missing"):
        return f"{leaf.fact} {leaf.op}"
    value = leaf.value
    shown = "[" + ", ".join(str(v) for v in value) + "]" if isinstance(value, tuple) else str(value)
    return f"{leaf.fact} {leaf.op} {shown}"
