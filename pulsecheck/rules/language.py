"""The rules files of DESIGN.md section 6: rules and their actions, and a validator that reports every problem.

The conditions (facts catalogue, condition tree, operators) are in `rules.conditions`.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pulsecheck.errors import InputError, ValidationFailed
from pulsecheck.rules.conditions import (
    BOOLEAN,
    FACTS,
    MAX_GROUPS,
    NUMBER,
    OPS,
    PRECISION,
    STRING,
    All,
    AnyOf,
    Leaf,
    Node,
    Not,
    engine_groups,
    fact_type,
    leaves,
    window_of,
)
from pulsecheck.rules.kpis import KpiNames, kpi_problem
from pulsecheck.timeutil import parse_duration
from pulsecheck.vocab import NOTIFY_ROLES, PRIORITIES, SEVERITIES
from pulsecheck.yamlfile import Limits, LineDict, LineList, line_of, load_text, read_file, suggest

ACTIONS = ("escalate", "open_review", "notify", "flag_deviation")
RULE_KEYS = ("id", "description", "when", "then", "cooldown", "resolve_when_clear")


@dataclass(frozen=True)
class Action:
    """One action of a rule's `then`, with its validated settings."""

    kind: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Rule:
    """One validated rule: its condition, actions, cooldown and the line it starts on."""

    id: str
    when: Node
    actions: tuple[Action, ...]
    description: str = ""
    cooldown: timedelta | None = None
    resolve_when_clear: bool = False
    line: int = 0


@dataclass(frozen=True)
class RulesFile:
    """A validated rules file: its rules, where it came from and the sha256 of its text."""

    rules: tuple[Rule, ...]
    source: str = "rules"
    sha256: str = ""
    text: str = field(default="", repr=False)


def windows_used(rules: tuple[Rule, ...] | list[Rule]) -> dict[str, set[int]]:
    """The `_<N>d` windows each family needs, so facts are computed only for those."""
    found: dict[str, set[int]] = {}
    for rule in rules:
        for leaf in leaves(rule.when):
            window = window_of(leaf.fact)
            if window:
                found.setdefault(window[0], set()).add(window[1])
    return found


class _Checker:
    def __init__(self, source: str, roles: tuple[str, ...], kpis: KpiNames | None = None) -> None:
        self.source, self.roles, self.problems = source, roles, []  # type: ignore[var-annotated]
        self.current = ""  # the rule being checked, named in problems with a condition's value
        self.kpis = kpis  # the approved model's KPIs, when the caller knows them

    def add(self, container: Any, key: Any, message: str) -> None:
        self.problems.append((line_of(container, key), f"{self.source}:{line_of(container, key)}: {message}"))

    def rule(self, item: Any, index: int, seen: dict[str, int], parent: LineList) -> Rule | None:
        if not isinstance(item, LineDict):
            self.add(parent, index, "each rule must be a mapping with id, when and then")
            return None
        for key in item:
            if key not in RULE_KEYS:
                self.add(item, key, f"unknown key {key!r}{suggest(key, RULE_KEYS)}")
        rule_id = item.get("id")
        if not isinstance(rule_id, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", rule_id or ""):
            self.add(item, "id", "rule id must be text of letters, digits, '-', '_' or '.'")
            rule_id = f"#{index + 1}"
        elif rule_id in seen:
            self.add(item, "id", f"duplicate rule id {rule_id!r} (first at line {seen[rule_id]})")
        seen.setdefault(rule_id, line_of(item, "id"))
        self.current = rule_id
        when = self.node(item["when"], item, "when") if "when" in item else None
        if "when" not in item:
            self.add(item, None, f"rule {rule_id}: missing 'when'")
        actions = self.actions(item["then"], item) if "then" in item else ()
        if "then" not in item:
            self.add(item, None, f"rule {rule_id}: missing 'then'")
        cooldown = self.duration(item, "cooldown")
        resolve = item.get("resolve_when_clear", False)
        if not isinstance(resolve, bool):
            self.add(item, "resolve_when_clear", "resolve_when_clear must be true or false")
        if when is None:
            return None
        groups = engine_groups(when)
        if groups > MAX_GROUPS:
            self.add(
                item,
                "when",
                f"rule {rule_id}: its condition needs {groups} all/any groups (counting in, not_in and between "
                f"lists and the rule itself); the durable-rules engine allows at most {MAX_GROUPS} (error 113): "
                "flatten the condition or split the rule",
            )
        return Rule(
            rule_id, when, actions, str(item.get("description") or ""), cooldown, resolve is True, line_of(item, "id")
        )

    def duration(self, item: LineDict, key: str) -> timedelta | None:
        if key not in item:
            return None
        try:
            return parse_duration(item[key], key)
        except InputError as exc:
            self.add(item, key, str(exc))
            return None

    def node(self, data: Any, parent: Any, key: Any) -> Node | None:
        if not isinstance(data, LineDict) or not data:
            self.add(parent, key, "a condition is a mapping: all/any/not or fact: {op: value}")
            return None
        items: list[Node] = []
        for name, value in data.items():
            if name in ("all", "any"):
                if not isinstance(value, LineList) or not value:
                    self.add(data, name, f"'{name}' takes a non-empty list of conditions")
                    continue
                children = [self.node(child, value, i) for i, child in enumerate(value)]
                kept = tuple(c for c in children if c is not None)
                items.append(All(kept) if name == "all" else AnyOf(kept))
            elif name == "not":
                child = self.node(value, data, name)
                if child is not None:
                    items.append(Not(child))
            else:
                items.extend(self.leaf(name, value, data))
        return items[0] if len(items) == 1 else All(tuple(items)) if items else None

    def leaf(self, fact: str, ops: Any, parent: LineDict) -> list[Leaf]:
        kind = fact_type(fact)
        if kind is None:
            catalogue = [
                *FACTS,
                "score_drop_30d",
                "score_change_30d",
                "max_score_30d",
                "open_tickets_30d",
                "open_high_tickets_60d",
                "tickets_high_60d",
                "kpi_change_pct.logins_30d",
                "kpi.nps",
                "kpi_status.nps",
                "group.customer_value",
                "all",
                "any",
                "not",
            ]
            self.add(parent, fact, f"unknown fact {fact!r}{suggest(fact, catalogue)}")
            return []
        kpi_wrong = kpi_problem(fact, self.kpis) if self.kpis is not None else None
        if kpi_wrong:
            self.add(parent, fact, f"rule {self.current}: {kpi_wrong}")
        if not isinstance(ops, LineDict) or not ops:
            self.add(parent, fact, f"{fact}: expected {{op: value}} with op one of {', '.join(OPS)}")
            return []
        result = []
        for op, value in ops.items():
            if op not in OPS:
                self.add(ops, op, f"{fact}: unknown operator {op!r}{suggest(op, OPS)}")
                continue
            checked = self.value(fact, kind, op, value, ops)
            if checked is not _BAD:
                result.append(Leaf(fact, op, checked))
        return result

    def value(self, fact: str, kind: str, op: str, value: Any, ops: LineDict) -> Any:
        def bad(message: str) -> object:
            self.add(ops, op, f"rule {self.current}: {fact} ({kind}) {op}: {message}")
            return _BAD

        if op in ("exists", "missing"):
            return True if value is True else bad("takes true")
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                return bad("takes a non-empty list")
            checked = [self.scalar(kind, v) for v in value]
            return bad(f"every item must be a {kind}") if _BAD in checked else tuple(checked)
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                return bad("takes [low, high]")
            low, high = (self.scalar(kind, v) for v in value)
            if kind != NUMBER or _BAD in (low, high):
                return bad("takes two numbers")
            return (low, high) if low <= high else bad(f"low {low} is above high {high}")
        if op in ("lt", "lte", "gt", "gte") and kind != NUMBER:
            return bad("ordering needs a number fact")
        if kind == NUMBER and isinstance(value, float) and not math.isfinite(value):
            return bad(f"expected a finite number, got {value!r}")  # .nan compares false with everything
        checked = self.scalar(kind, value)
        return bad(f"expected a {kind}, got {value!r}") if checked is _BAD else checked

    @staticmethod
    def scalar(kind: str, value: Any) -> Any:
        if kind == BOOLEAN:
            return value if isinstance(value, bool) else _BAD
        if kind == STRING:
            return value if isinstance(value, str) else _BAD
        if isinstance(value, bool) or not isinstance(value, int | float) or not abs(value) < 1e15:  # NaN: not <
            return _BAD
        return round(float(value), PRECISION) if isinstance(value, float) else value

    def actions(self, data: Any, parent: LineDict) -> tuple[Action, ...]:
        if not isinstance(data, LineDict) or not data:
            self.add(parent, "then", f"'then' is a mapping of actions: {', '.join(ACTIONS)}")
            return ()
        found = []
        for kind, params in data.items():
            if kind not in ACTIONS:
                self.add(data, kind, f"unknown action {kind!r}{suggest(kind, ACTIONS)}")
                continue
            if kind == "notify" and isinstance(params, list):
                params = _with_lines({"roles": params}, data, kind)
            if params is None:
                params = _with_lines({}, data, kind)
            if not isinstance(params, LineDict):
                self.add(data, kind, f"{kind}: expected a mapping of settings")
                continue
            found.append(Action(kind, self.action_params(kind, params)))
        return tuple(found)

    def action_params(self, kind: str, params: LineDict) -> dict[str, Any]:
        allowed = {
            "escalate": ("severity", "due_in", "notify", "priority", "reason"),
            "open_review": ("priority", "due_in", "notify"),
            "notify": ("roles", "message"),
            "flag_deviation": ("kind", "detail"),
        }[kind]
        result: dict[str, Any] = {}
        for key, value in params.items():
            if key not in allowed:
                self.add(params, key, f"{kind}: unknown setting {key!r}{suggest(key, allowed)}")
            elif key == "due_in":
                result[key] = self.duration(params, key)
            elif key == "severity" and value not in SEVERITIES:
                self.add(params, key, f"{kind}: severity {value!r} is not one of {', '.join(SEVERITIES)}")
            elif key == "priority" and value not in PRIORITIES:
                self.add(params, key, f"{kind}: priority {value!r} is not one of {', '.join(PRIORITIES)}")
            elif key in ("notify", "roles"):
                roles = value if isinstance(value, list) else [value]
                for role in roles:
                    if role not in self.roles:
                        self.add(params, key, f"{kind}: unknown role {role!r}{suggest(str(role), self.roles)}")
                result[key] = tuple(str(r) for r in roles)
            elif not isinstance(value, str):
                self.add(params, key, f"{kind}: {key} must be text")
            else:
                result[key] = value
        if kind == "escalate" and "severity" not in params:
            self.add(params, None, "escalate: severity is required")
        if kind == "flag_deviation" and "kind" not in params:
            self.add(params, None, "flag_deviation: kind is required")
        if kind == "notify" and not result.get("roles"):
            self.add(params, None, "notify: roles are required")
        return result


_BAD = object()


def _with_lines(values: dict[str, Any], parent: LineDict, key: str) -> LineDict:
    result = LineDict(values)
    result.line = line_of(parent, key)
    result.key_lines = {k: result.line for k in values}
    return result


def load_rules(
    text: str,
    source: str,
    roles: tuple[str, ...] = NOTIFY_ROLES,
    kpis: KpiNames | None = None,
    limits: Limits = Limits(),
) -> RulesFile:
    """Parse and validate a rules file (YAML within `limits`); every problem is reported at once with its line.
    With `kpis`, a fact naming a KPI that is not in the approved model is one of them."""
    data = load_text(text, source, limits)
    checker = _Checker(source, roles, kpis)
    if not isinstance(data, LineDict):
        raise ValidationFailed([f"{source}:1: a rules file is a mapping with 'version' and 'rules'"])
    for key in data:
        if key not in ("version", "rules"):
            checker.add(data, key, f"unknown key {key!r}{suggest(key, ('version', 'rules'))}")
    if data.get("version") != 1:
        checker.add(data, "version", "version must be 1")
    items = data.get("rules")
    rules: list[Rule] = []
    if not isinstance(items, LineList) or not items:
        checker.add(data, "rules", "'rules' must be a non-empty list")
    else:
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            rule = checker.rule(item, index, seen, items)
            if rule is not None:
                rules.append(rule)
    if checker.problems:
        raise ValidationFailed([message for _, message in sorted(checker.problems, key=lambda p: p[0])])
    return RulesFile(tuple(rules), source, hashlib.sha256(text.encode()).hexdigest(), text)


def load_rules_file(
    path: str | Path, roles: tuple[str, ...] = NOTIFY_ROLES, kpis: KpiNames | None = None, limits: Limits = Limits()
) -> RulesFile:
    """Read and validate a rules file (bounded: a regular UTF-8 file within the YAML limits)."""
    return load_rules(read_file(path, limits), str(path), roles, kpis, limits)
