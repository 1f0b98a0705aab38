"""Parsing a scoring-model file (YAML) into a ScoringModel, with every problem reported at once by line."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from pulsecheck.errors import InputError, ValidationFailed
from pulsecheck.scoring.colors import default_bucket_color, is_color
from pulsecheck.scoring.model import CES_KEYS, Bucket, CesThresholds, Kpi, Scale, ScoringModel
from pulsecheck.scoring.problems import Problems, fmt, is_number
from pulsecheck.scoring.structure import (
    check_threshold_order,
    kpi_entries,
    parse_discount_rate,
    parse_formula,
    parse_groups,
    parse_statuses,
    parse_threshold,
)
from pulsecheck.timeutil import parse_duration
from pulsecheck.vocab import SURVEY_KINDS
from pulsecheck.yamlfile import Limits, LineDict, LineList, line_of, load_text, read_file

MISSING_POLICIES = ("renormalize", "zero", "fail")
DEFAULT_SURVEY_WINDOW = timedelta(days=90)
TOP_KEYS = ("version", "kpis", "buckets", "missing_inputs", "ces", "groups", "statuses", "discount_rate")
KPI_KEYS = (
    "name", "weight", "scale", "max_age", "from_surveys", "window", "ces", "group", "concern", "strength", "formula",
)  # fmt: skip
BUCKET_KEYS = ("name", "below", "color")
SCALE_KEYS = ("min", "max")
SURVEY_SCALES = {"nps": Scale(-100.0, 100.0), "csat": Scale(0.0, 100.0), "ces": Scale(-100.0, 100.0)}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def parse_model(text: str, source: str, limits: Limits = Limits()) -> ScoringModel:
    """Parse and validate scoring-model YAML; raise ValidationFailed listing every `source:line:` problem."""
    try:
        data = load_text(text, source, limits)
    except InputError as exc:
        raise ValidationFailed([str(exc)]) from None
    problems = Problems(source)
    if not isinstance(data, LineDict):
        raise ValidationFailed([f"{source}:{max(1, line_of(data))}: expected a mapping with version, kpis and buckets"])
    problems.unknown_keys(data, TOP_KEYS, "")
    version = _parse_version(data, problems)
    policy = "renormalize"
    if "missing_inputs" in data:
        policy = problems.choice(data, "missing_inputs", MISSING_POLICIES, "unknown missing_inputs policy") or policy
    ces = _parse_ces(data, problems, "") if "ces" in data else None
    parsed = _parse_kpis(data, problems)
    groups, assignment = parse_groups(data, kpi_entries(data), problems)
    kpis = [replace(kpi, group=assignment.get(kpi.name)) for _, kpi in parsed]
    buckets = _parse_buckets(data, problems)
    statuses = parse_statuses(data, problems)
    rate = parse_discount_rate(data, problems)
    problems.fail_if_any()
    return ScoringModel(
        version, tuple(kpis), tuple(buckets), policy, ces or CesThresholds(), tuple(groups), statuses, rate
    )


def load_model_file(path: str | Path) -> ScoringModel:
    """Read and parse a scoring-model file; every problem names the file and line."""
    return parse_model(read_file(path), str(path))


def _parse_version(data: LineDict, problems: Problems) -> str:
    value = data.get("version")
    if "version" not in data:
        problems.add(data, None, "missing required key 'version'")
    elif not isinstance(value, str) or not value.strip():
        hint = ' (quote it, like version: "2026.11", or YAML reads a number)' if is_number(value) else ""
        problems.add(data, "version", f"version must be non-empty text, got {value!r}{hint}")
    else:
        return value.strip()
    return ""


def _parse_ces(parent: LineDict, problems: Problems, where: str) -> CesThresholds | None:
    value = parent["ces"]
    if not isinstance(value, LineDict):
        problems.add(parent, "ces", f"{where}ces must be a mapping {{positive_at, negative_at}}")
        return None
    problems.unknown_keys(value, CES_KEYS, f"{where}ces: ")
    result = {"positive_at": CesThresholds.positive_at, "negative_at": CesThresholds.negative_at}
    for name in CES_KEYS:
        number = value.get(name, result[name])
        if not is_number(number) or not 0 < number <= 1:
            problems.add(value, name, f"{where}ces {name} must be a fraction in (0, 1], got {number!r}")
            return None
        result[name] = float(number)
    if result["negative_at"] >= result["positive_at"]:
        problems.add(
            value,
            None,
            f"{where}ces negative_at ({fmt(result['negative_at'])}) must be below "
            f"positive_at ({fmt(result['positive_at'])})",
        )
    return CesThresholds(result["positive_at"], result["negative_at"])


def _required_list(data: LineDict, key: str, problems: Problems) -> LineList:
    value = data.get(key)
    if key not in data:
        problems.add(data, None, f"missing required key {key!r}")
    elif not isinstance(value, LineList) or not value:
        problems.add(data, key, f"{key} must be a non-empty list")
    else:
        return value
    return LineList()


def _parse_kpis(data: LineDict, problems: Problems) -> list[tuple[LineDict, Kpi]]:
    """The valid KPIs, each with its mapping in the file (for the lines of later problems)."""
    items = _required_list(data, "kpis", problems)
    kpis: list[tuple[LineDict, Kpi]] = []
    seen: dict[str, int] = {}
    weights: list[Any] = []
    for index, item in enumerate(items):
        if not isinstance(item, LineDict):
            problems.add(items, index, f"kpis[{index}] must be a mapping with name and weight")
            continue
        weights.append(item.get("weight"))
        kpi = _parse_kpi(item, index, problems)
        problems.once(seen, item.get("name"), item, "kpi")
        if kpi is not None:
            kpis.append((item, kpi))
    if weights and all(is_number(w) for w in weights) and abs(sum(weights) - 100) > 1e-9:
        problems.add(data, "kpis", f"kpi weights sum to {fmt(round(sum(weights), 6))}, expected 100")
    return kpis


def _parse_kpi(item: LineDict, index: int, problems: Problems) -> Kpi | None:
    count = len(problems.found)
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        rule = "must be lowercase letters, digits and _ (like open_tickets)"
        problems.add(item, "name", f"kpis[{index}]: name {rule}, got {name!r}")
        name = f"kpis[{index}]"
    where = f"kpi {name!r}: "
    problems.unknown_keys(item, KPI_KEYS, where)
    weight: Any = item.get("weight")
    if "weight" not in item:
        problems.add(item, None, f"{where}missing required key 'weight'")
    elif not is_number(weight) or weight < 0:
        problems.add(item, "weight", f"{where}weight must be a number >= 0 (0: tracked, not scored), got {weight!r}")
    kind = None
    if "from_surveys" in item:
        kind = problems.choice(item, "from_surveys", SURVEY_KINDS, f"{where}unknown from_surveys kind")
    formula = parse_formula(item, where, problems)
    scale = _parse_scale(item, kind, where, problems, tracked=weight == 0)
    max_age = _parse_age(item, "max_age", where, problems)
    window = _parse_age(item, "window", where, problems)
    if "window" in item and "from_surveys" not in item and "formula" not in item:
        problems.add(item, "window", f"{where}window only applies to from_surveys KPIs and arr_growth_pct")
    concern = parse_threshold(item, "concern", scale, where, problems)
    strength = parse_threshold(item, "strength", scale, where, problems)
    check_threshold_order(item, concern, strength, where, problems)
    ces = None
    if "ces" in item and kind == "ces":
        ces = _parse_ces(item, problems, where)
    elif "ces" in item:
        problems.add(item, "ces", f"{where}ces thresholds only apply to from_surveys: ces")
    if len(problems.found) > count or (scale is None and weight != 0):
        return None
    if kind is not None and window is None:
        window = max_age or DEFAULT_SURVEY_WINDOW
    return Kpi(name, float(weight), scale, max_age, kind, window, ces, None, concern, strength, formula)


def _parse_scale(item: LineDict, kind: str | None, where: str, problems: Problems, tracked: bool) -> Scale | None:
    value = item.get("scale")
    if "scale" not in item:
        if kind is not None:
            return SURVEY_SCALES[kind]
        if "from_surveys" not in item and not tracked:
            problems.add(item, None, f"{where}needs a scale {{min, max}} (or from_surveys: nps|csat|ces)")
        return None
    if not isinstance(value, LineDict):
        problems.add(item, "scale", f"{where}scale must be a mapping {{min, max}}, got {value!r}")
        return None
    problems.unknown_keys(value, SCALE_KEYS, f"{where}scale: ")
    bounds: list[float] = []
    for key in SCALE_KEYS:
        if key not in value:
            problems.add(value, None, f"{where}scale is missing {key!r}")
        elif not is_number(value[key]):
            problems.add(value, key, f"{where}scale {key} must be a number, got {value[key]!r}")
        else:
            bounds.append(float(value[key]))
    if len(bounds) == 2 and bounds[0] == bounds[1]:
        problems.add(value, None, f"{where}scale min and max are both {fmt(bounds[0])}; they must differ")
    return Scale(bounds[0], bounds[1]) if len(bounds) == 2 and bounds[0] != bounds[1] else None


def _parse_age(item: LineDict, key: str, where: str, problems: Problems) -> timedelta | None:
    if key not in item:
        return None
    try:
        value = parse_duration(item[key], f"{where}{key}")
    except InputError as exc:
        problems.add(item, key, str(exc))
        return None
    if value <= timedelta(0):
        problems.add(item, key, f"{where}{key} must be longer than zero")
        return None
    return value


def _parse_buckets(data: LineDict, problems: Problems) -> list[Bucket]:
    items = _required_list(data, "buckets", problems)
    buckets: list[Bucket] = []
    seen: dict[str, int] = {}
    previous: float | None = None
    for index, item in enumerate(items):
        if not isinstance(item, LineDict):
            problems.add(items, index, f"buckets[{index}] must be a mapping with name and color")
            continue
        bucket = _parse_bucket(item, index, len(items), previous, problems)
        problems.once(seen, item.get("name"), item, "bucket")
        previous = bucket.below if bucket.below is not None else previous
        buckets.append(bucket)
    return buckets


def _parse_bucket(item: LineDict, index: int, count: int, previous: float | None, problems: Problems) -> Bucket:
    last = index == count - 1
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.add(item, "name", f"buckets[{index}]: name must be non-empty text, got {name!r}")
        name = f"buckets[{index}]"
    where = f"bucket {name!r}: "
    problems.unknown_keys(item, BUCKET_KEYS, where)
    color = item.get("color")
    if "color" not in item:
        color = default_bucket_color(index, count)  # none named: the lowest red, the highest green, amber between
    elif not isinstance(color, str) or not color.strip():
        problems.add(item, "color", f"{where}color must be non-empty text, got {color!r}")
        color = ""
    elif not is_color(color):
        # Reports put the colour into CSS: anything but a plain colour could fetch a URL or restyle the page.
        problems.add(item, "color", f"{where}color {color!r} must be #rrggbb, #rgb or a CSS colour name (like orange)")
        color = ""
    below: Any = item.get("below")
    if last and below is not None:
        problems.add(item, "below", f"{where}the last bucket must not have 'below' (it is open-ended)")
    elif not last and below is None:
        problems.add(item, None, f"{where}needs 'below' (only the last bucket is open-ended)")
    elif not last and (not is_number(below) or not 0 < below <= 100):
        problems.add(item, "below", f"{where}below must be a number in (0, 100], got {below!r}")
    elif not last:
        if previous is not None and below <= previous:
            message = f"below {fmt(below)} must be greater than the previous bucket's {fmt(previous)}"
            problems.add(item, "below", f"{where}{message} (thresholds must strictly increase)")
        return Bucket(name, float(below), color)
    return Bucket(name, None, color)
