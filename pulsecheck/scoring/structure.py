"""Parsing the scorecard parts of a model file: the groups tree, each KPI's concern/strength thresholds and
formula, the status colours and the discount rate. Problems go to the same collector as the rest of the file."""

from __future__ import annotations

import re
from typing import Any

from pulsecheck.scoring.colors import is_color
from pulsecheck.scoring.model import FORMULAS, STATUS_COLORS, Group, Scale, Threshold
from pulsecheck.scoring.problems import Problems, fmt, is_number
from pulsecheck.yamlfile import LineDict, LineList, line_of, suggest

THRESHOLD_OPS = {"concern": ("below", "above"), "strength": ("at_least", "at_most")}
GROUP_KEYS = ("name", "label", "groups", "kpis")
STATUS_KEYS = tuple(STATUS_COLORS)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def parse_threshold(item: LineDict, key: str, scale: Scale | None, where: str, problems: Problems) -> Threshold | None:
    """`concern: {below: X}` / `strength: {at_least: Y}` (or above / at_most), in the KPI's raw units and
    within its scale."""
    if key not in item:
        return None
    value, ops = item[key], THRESHOLD_OPS[key]
    shape = f"{where}{key} must be a mapping like {{{ops[0]}: 40}} (or {{{ops[1]}: ...}})"
    if not isinstance(value, LineDict) or len(value) != 1:
        problems.add(item, key, shape)
        return None
    ((op, number),) = value.items()
    if op not in ops:
        problems.add(value, op, f"{where}{key}: unknown key {op!r}{suggest(op, ops)}; expected {ops[0]} or {ops[1]}")
        return None
    if not is_number(number):
        problems.add(value, op, f"{where}{key} {op} must be a number, got {number!r}")
        return None
    if scale is not None and not min(scale.min, scale.max) <= number <= max(scale.min, scale.max):
        span = f"{fmt(scale.min)}..{fmt(scale.max)}"
        problems.add(value, op, f"{where}{key} {op} {fmt(number)} is outside the KPI's scale {span}")
        return None
    return Threshold(op, float(number))


def check_threshold_order(item: LineDict, concern: Threshold | None, strength: Threshold | None, where: str,
                          problems: Problems) -> None:  # fmt: skip
    """A value cannot be both an area of concern and a strength: concern below X needs strength at_least >= X."""
    if concern is None or strength is None:
        return
    if concern.op == "below" and strength.op == "at_least" and strength.value < concern.value:
        problems.add(item, "strength", f"{where}strength at_least {fmt(strength.value)} is below concern "
                     f"below {fmt(concern.value)}")  # fmt: skip
    if concern.op == "above" and strength.op == "at_most" and strength.value > concern.value:
        problems.add(item, "strength", f"{where}strength at_most {fmt(strength.value)} is above concern "
                     f"above {fmt(concern.value)}")  # fmt: skip


def parse_formula(item: LineDict, where: str, problems: Problems) -> str | None:
    """The KPI's built-in formula (never an expression), with the keys that cannot go with it refused."""
    if "formula" not in item:
        return None
    formula = problems.choice(item, "formula", FORMULAS, f"{where}unknown formula")
    for other in ("from_surveys", "max_age"):
        if other in item:
            problems.add(item, other, f"{where}{other} does not apply to a formula KPI")
    if formula == "arr_growth_pct" and "window" not in item:
        problems.add(item, "formula", f"{where}formula arr_growth_pct needs a window (like window: 365d)")
    elif formula not in (None, "arr_growth_pct") and "window" in item:
        problems.add(item, "window", f"{where}window only applies to from_surveys KPIs and arr_growth_pct")
    return formula


def parse_statuses(data: LineDict, problems: Problems) -> dict[str, str]:
    """The status colours, `{concern: orange, strength: green}` unless the model says otherwise."""
    colors = dict(STATUS_COLORS)
    value = data.get("statuses")
    if "statuses" not in data:
        return colors
    if not isinstance(value, LineDict):
        problems.add(data, "statuses", "statuses must be a mapping like {concern: orange, strength: green}")
        return colors
    problems.unknown_keys(value, STATUS_KEYS, "statuses: ")
    for key in STATUS_KEYS:
        color = value.get(key, colors[key])
        if not is_color(color):
            # Reports put the colour into CSS, as with bucket colours: a plain colour only.
            problems.add(value, key, f"statuses: {key} colour {color!r} must be #rrggbb, #rgb or a CSS colour name")
        else:
            colors[key] = color
    return colors


def parse_discount_rate(data: LineDict, problems: Problems) -> float | None:
    """The model's discount rate per period for npv: a fraction in [0, 1], like 0.08."""
    if "discount_rate" not in data:
        return None
    value = data["discount_rate"]
    if not is_number(value) or not 0 <= value <= 1:
        problems.add(data, "discount_rate", f"discount_rate must be a fraction in [0, 1] (like 0.08), got {value!r}")
        return None
    return float(value)


class _Tree:
    """The groups as the file gives them: definitions, parent links and KPI memberships, with where each was."""

    def __init__(self) -> None:
        self.defined: dict[str, LineDict] = {}
        self.children: dict[str, list[str]] = {}
        self.parent: dict[str, tuple[str, Any, int]] = {}  # child -> (parent, list, index)
        self.member: dict[str, tuple[str, Any, Any]] = {}  # kpi -> (group, container, key)
        self.broken = False  # a KPI named a group wrongly: "group x has no KPI" would only repeat that

    def names(self) -> list[str]:
        return list(dict.fromkeys([*self.defined, *self.parent]))


def kpi_entries(data: LineDict) -> list[tuple[LineDict, str, bool]]:
    """Each KPI mapping of the file with its name and whether it is scored (weight above 0), valid or not, so
    that group problems are found even beside other problems of a KPI."""
    items = data.get("kpis")
    if not isinstance(items, list):
        return []
    return [
        (item, item["name"], not (is_number(item.get("weight")) and item["weight"] == 0))
        for item in items
        if isinstance(item, LineDict) and isinstance(item.get("name"), str)
    ]


def parse_groups(
    data: LineDict, kpis: list[tuple[LineDict, str, bool]], problems: Problems
) -> tuple[list[Group], dict[str, str]]:
    """The groups tree and each KPI's group (`kpi_entries`); a KPI in two groups, an unknown group or KPI, a
    cycle, a scored KPI in no group and a group with no KPI are problems."""
    if "groups" not in data:
        for item, name, _ in kpis:
            if "group" in item:
                problems.add(item, "group", f"kpi {name!r}: group {item['group']!r}, but the model has no groups")
        return [], {}
    items = data["groups"]
    if not isinstance(items, LineList) or not items:
        problems.add(data, "groups", "groups must be a non-empty list of {name, label, groups}")
        return [], {}
    tree, seen = _Tree(), dict[str, int]()
    for index, item in enumerate(items):
        _group_entry(items, index, item, tree, seen, problems)
    names = tree.names()
    kpi_names = [name for _, name, _ in kpis]
    for group, entry in tree.defined.items():
        for index, name in enumerate(entry.get("kpis") or []):
            if isinstance(name, str) and name not in kpi_names:
                problems.add(entry["kpis"], index, f"group {group!r}: unknown kpi {name!r}{suggest(name, kpi_names)}")
    for item, name, _ in kpis:
        _kpi_group(item, name, names, tree, problems)
    cyclic = _cycles(tree, problems)
    for item, name, scored in kpis:
        if scored and name not in tree.member and "group" not in item:
            problems.add(item, "name", f"kpi {name!r} is in no group (with groups, every scored KPI is in one)")
    groups = [Group(n, _label(tree.defined.get(n), n), tuple(tree.children.get(n, ()))) for n in names]
    assignment = {kpi: group for kpi, (group, _, _) in tree.member.items()}
    if not cyclic and not tree.broken:
        _empty_groups(groups, assignment, kpis, tree, problems)
    return groups, assignment


def _label(entry: LineDict | None, name: str) -> str:
    label = entry.get("label") if entry is not None else None
    return label.strip() if isinstance(label, str) and label.strip() else name


def _group_entry(items: LineList, index: int, item: Any, tree: _Tree, seen: dict[str, int], problems: Problems) -> None:
    if not isinstance(item, LineDict):
        problems.add(items, index, f"groups[{index}] must be a mapping with name, label and groups")
        return
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.add(item, "name", f"groups[{index}]: name must be lowercase letters, digits and _, got {name!r}")
        return
    where = f"group {name!r}: "
    problems.unknown_keys(item, GROUP_KEYS, where)
    problems.once(seen, name, item, "group")
    tree.defined.setdefault(name, item)
    if "label" in item and (not isinstance(item["label"], str) or not item["label"].strip()):
        problems.add(item, "label", f"{where}label must be non-empty text")
    for key in ("groups", "kpis"):
        values = item.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) and _NAME.match(v) for v in values):
            problems.add(item, key, f"{where}{key} must be a list of names")
            continue
        for position, value in enumerate(values):
            if key == "kpis":
                _join(tree, value, name, values, position, problems)
            elif value in tree.parent and tree.parent[value][0] != name:
                first, where_first, at = tree.parent[value]
                problems.add(values, position, f"group {value!r} has two parents: {first!r} (line "
                             f"{line_of(where_first, at)}) and {name!r}")  # fmt: skip
            else:
                tree.parent[value] = (name, values, position)
                tree.children.setdefault(name, []).append(value)


def _join(tree: _Tree, kpi: str, group: str, container: Any, key: Any, problems: Problems) -> None:
    """Put a KPI in a group, unless it is in another one already."""
    if kpi in tree.member and tree.member[kpi][0] != group:
        first, where, at = tree.member[kpi]
        tree.broken = True
        problems.add(
            container, key, f"kpi {kpi!r} is in two groups: {first!r} (line {line_of(where, at)}) and {group!r}"
        )
        return
    tree.member.setdefault(kpi, (group, container, key))


def _kpi_group(item: LineDict, kpi: str, names: list[str], tree: _Tree, problems: Problems) -> None:
    if "group" not in item:
        return
    value = item["group"]
    tree.broken = tree.broken or not (isinstance(value, str) and value in names)
    if isinstance(value, list):
        problems.add(item, "group", f"kpi {kpi!r} is in {len(value)} groups: a KPI is in one group")
    elif not isinstance(value, str) or value not in names:
        hint = suggest(value, names) if isinstance(value, str) else ""
        problems.add(item, "group", f"kpi {kpi!r}: unknown group {value!r}{hint}")
    else:
        _join(tree, kpi, value, item, "group", problems)


def _cycles(tree: _Tree, problems: Problems) -> bool:
    """Report each cycle of the parent links once; True when there is one."""
    reported: set[str] = set()
    for start in tree.parent:
        path, node = [start], start
        while node in tree.parent and tree.parent[node][0] not in path:
            node = tree.parent[node][0]
            path.append(node)
        if node in tree.parent and tree.parent[node][0] in path:
            loop = path[path.index(tree.parent[node][0]) :]
            if not reported & set(loop):
                reported.update(loop)
                _, container, at = tree.parent[start]
                problems.add(container, at, f"groups form a cycle: {' -> '.join([*reversed(loop), loop[-1]])}")
    return bool(reported)


def _empty_groups(groups: list[Group], assignment: dict[str, str], kpis: list[tuple[LineDict, str, bool]],
                  tree: _Tree, problems: Problems) -> None:  # fmt: skip
    children = {group.name: group.children for group in groups}
    scored = {name for _, name, is_scored in kpis if is_scored}
    direct: dict[str, int] = {}
    for name, member_of in assignment.items():
        direct[member_of] = direct.get(member_of, 0) + (name in scored)

    def count(name: str) -> int:
        return direct.get(name, 0) + sum(count(child) for child in children.get(name, ()))

    for group in groups:
        if count(group.name) == 0:
            entry = tree.defined.get(group.name)
            container, key = (entry, "name") if entry is not None else tree.parent[group.name][1:]
            problems.add(container, key, f"group {group.name!r} has no KPI (give a scored KPI `group: {group.name}`)")
