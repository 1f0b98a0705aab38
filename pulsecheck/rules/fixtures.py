"""Rule fixtures: YAML files kept beside a rules file (`rules.yaml` -> `rules.tests/*.yaml`), each case giving an
account's facts and the rules expected to fire, and optionally the actions they ask for (`rules test`).

    facts: {days_to_renewal: 200}          # optional: facts every case of the file starts from
    cases:
      - name: three high tickets in 60 days escalate
        facts: {tickets_high_60d: 3}       # a fact not given (or null) is missing: its conditions are false
        fires: [high-tickets]              # exactly these rules fire ([] for none)
        actions:                           # optional: exactly these actions, in any order
          - escalate: {severity: high}     # each names the settings it checks; the others may be anything
          - notify                         # the kind alone
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulsecheck.errors import InputError, ValidationFailed
from pulsecheck.rules.conditions import BOOLEAN, FACTS, NUMBER, STRING, fact_type
from pulsecheck.rules.language import ACTIONS, RulesFile
from pulsecheck.timeutil import parse_duration
from pulsecheck.yamlfile import LineDict, LineList, line_of, load_text, read_file, suggest

CASE_KEYS = ("name", "facts", "fires", "actions")
EXAMPLE_FACTS = (*FACTS, "score_drop_30d", "max_score_30d", "tickets_high_60d", "kpi_change_pct.logins_30d")


@dataclass(frozen=True)
class Expected:
    """One expected action: its kind, the rule that asks for it (when the fixture says), the settings it checks."""

    kind: str
    rule: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """One fixture case: where it is (`file:line`), its name, facts, the rules expected to fire, and the actions
    expected (None: not checked)."""

    where: str
    name: str
    facts: Mapping[str, Any]
    fires: tuple[str, ...]
    actions: tuple[Expected, ...] | None = None


def default_dir(rules_path: str | Path) -> Path:
    """Where the fixtures of a rules file live by default: `rules.yaml` -> `rules.tests/` beside it."""
    path = Path(rules_path)
    return path.with_name(f"{path.stem}.tests")


def fixture_files(directory: Path) -> list[Path]:
    """The fixture files of a directory (`*.yaml`, `*.yml`), sorted; InputError when there are none."""
    if not directory.is_dir():
        raise InputError(f"{directory}: no fixtures directory (create it with a *.yaml file of cases, or --fixtures)")
    found = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not found:
        raise InputError(f"{directory}: no fixture files (*.yaml)")
    return found


def load_fixtures(paths: list[Path], rules: RulesFile) -> list[Case]:
    """Every case of the files, checked against the rules file; ValidationFailed lists every problem."""
    problems: list[str] = []
    cases: list[Case] = []
    for path in paths:
        reader = _Reader(str(path), {rule.id for rule in rules.rules}, problems)
        cases.extend(reader.read(load_text(read_file(path), str(path))))
    if problems:
        raise ValidationFailed(problems)
    return cases


class _Reader:
    """Reads one fixture file, collecting problems as `file:line: message`."""

    def __init__(self, source: str, rule_ids: set[str], problems: list[str]) -> None:
        self.source, self.rule_ids, self.problems = source, rule_ids, problems

    def add(self, container: Any, key: Any, message: str) -> None:
        self.problems.append(f"{self.source}:{line_of(container, key)}: {message}")

    def read(self, data: Any) -> list[Case]:
        if not isinstance(data, LineDict):
            self.problems.append(f"{self.source}:1: a fixture file is a mapping with 'cases' (and optional 'facts')")
            return []
        for key in data:
            if key not in ("facts", "cases"):
                self.add(data, key, f"unknown key {key!r}{suggest(key, ('facts', 'cases'))}")
        base = self.facts(data["facts"], data, "facts") if "facts" in data else {}
        items = data.get("cases")
        if not isinstance(items, LineList) or not items:
            self.add(data, "cases", "'cases' must be a non-empty list")
            return []
        return [case for i, item in enumerate(items) if (case := self.case(item, items, i, base)) is not None]

    def case(self, item: Any, parent: LineList, index: int, base: dict[str, Any]) -> Case | None:
        if not isinstance(item, LineDict):
            self.add(parent, index, "each case is a mapping with name, facts and fires")
            return None
        for key in item:
            if key not in CASE_KEYS:
                self.add(item, key, f"unknown key {key!r}{suggest(key, CASE_KEYS)}")
        for key in ("name", "facts", "fires"):
            if key not in item:
                self.add(item, None, f"case {index + 1}: missing {key!r}")
        name = item.get("name")
        if "name" in item and (not isinstance(name, str) or not name.strip()):
            self.add(item, "name", "a case's name is text")
        facts = {**base, **(self.facts(item["facts"], item, "facts") if "facts" in item else {})}
        fires = self.rule_list(item.get("fires"), item, "fires")
        actions = self.actions(item["actions"], item) if "actions" in item else None
        where = f"{self.source}:{line_of(parent, index)}"
        return Case(where, str(name or f"case {index + 1}"), facts, tuple(fires), actions)

    def facts(self, data: Any, parent: Any, key: str) -> dict[str, Any]:
        if not isinstance(data, LineDict):
            self.add(parent, key, "facts are a mapping of fact: value")
            return {}
        result: dict[str, Any] = {}
        for fact, value in data.items():
            kind = fact_type(fact)
            if kind is None:
                self.add(data, fact, f"unknown fact {fact!r}{suggest(fact, EXAMPLE_FACTS)}")
            elif value is not None and not _is(kind, value):
                self.add(data, fact, f"{fact} is a {kind}, got {value!r}")
            else:
                result[fact] = value
        return result

    def rule_list(self, data: Any, parent: LineDict, key: str) -> list[str]:
        if data is None and key not in parent:
            return []
        if not isinstance(data, LineList) or not all(isinstance(v, str) for v in data):
            self.add(parent, key, f"'{key}' is a list of rule ids ([] for none)")
            return []
        for index, rule_id in enumerate(data):
            if rule_id not in self.rule_ids:
                self.add(data, index, f"no rule {rule_id!r} in the rules file{suggest(rule_id, self.rule_ids)}")
        return list(data)

    def actions(self, data: Any, parent: LineDict) -> tuple[Expected, ...] | None:
        if not isinstance(data, LineList):
            self.add(parent, "actions", "'actions' is a list: `- escalate: {severity: high}` or `- notify`")
            return None
        return tuple(found for i, item in enumerate(data) if (found := self.action(item, data, i)) is not None)

    def action(self, item: Any, parent: LineList, index: int) -> Expected | None:
        if isinstance(item, str):
            item = {item: None}
        kinds = [key for key in item if key != "rule"] if isinstance(item, dict) else []
        if len(kinds) != 1 or kinds[0] not in ACTIONS:
            wrong = kinds[0] if len(kinds) == 1 else ""
            self.add(parent, index, f"an action is one of {', '.join(ACTIONS)}{suggest(wrong, ACTIONS)}")
            return None
        kind, rule, params = kinds[0], item.get("rule"), item[kinds[0]]
        if rule is not None and rule not in self.rule_ids:
            self.add(parent, index, f"no rule {rule!r} in the rules file{suggest(str(rule), self.rule_ids)}")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            self.add(parent, index, f"{kind}: the settings to check are a mapping")
            return None
        if "due_in" in params:
            try:
                params = {**params, "due_in": parse_duration(params["due_in"], f"{kind} due_in")}
            except InputError as exc:
                self.add(parent, index, str(exc))
        return Expected(kind, rule, dict(params))


def _is(kind: str, value: Any) -> bool:
    if kind == BOOLEAN:
        return isinstance(value, bool)
    if kind == STRING:
        return isinstance(value, str)
    assert kind == NUMBER
    return isinstance(value, int | float) and not isinstance(value, bool)
