"""The scoring model: KPIs, weights, scales and buckets, parsed from YAML with every problem reported."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pulsecheck.errors import InputError, ValidationFailed
from pulsecheck.jsontext import MODEL_DIGEST, canonical_digest
from pulsecheck.timeutil import format_duration, parse_duration
from pulsecheck.vocab import SURVEY_KINDS
from pulsecheck.yamlfile import LineDict, LineList, line_of, load_text, suggest

MISSING_POLICIES = ("renormalize", "zero", "fail")
DEFAULT_SURVEY_WINDOW = timedelta(days=90)
TOP_KEYS = ("version", "kpis", "buckets", "missing_inputs", "ces")
KPI_KEYS = ("name", "weight", "scale", "max_age", "from_surveys", "window", "ces")
BUCKET_KEYS = ("name", "below", "color")
SCALE_KEYS = ("min", "max")
CES_KEYS = ("positive_at", "negative_at")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Scale:
    """Raw values from `min` (normalized 0) to `max` (normalized 100); inverted when min > max."""

    min: float
    max: float

    @property
    def inverted(self) -> bool:
        """True when a lower raw value is better (e.g. open tickets 20 -> 0)."""
        return self.min > self.max

    def normalize(self, value: float) -> float:
        """Map a raw value onto 0..100, clamping values beyond either end."""
        fraction = (value - self.min) / (self.max - self.min)
        return min(100.0, max(0.0, fraction * 100.0))


@dataclass(frozen=True)
class CesThresholds:
    """CES cut-offs as fractions of a response's max_score: score/max >= positive_at is positive,
    score/max <= negative_at is negative. The defaults make 5-7 positive and 1-3 negative on a 1-7 scale."""

    positive_at: float = 0.7
    negative_at: float = 0.45


SURVEY_SCALES = {"nps": Scale(-100.0, 100.0), "csat": Scale(0.0, 100.0), "ces": Scale(-100.0, 100.0)}


@dataclass(frozen=True)
class Kpi:
    """One weighted input; `from_surveys` KPIs are computed from survey responses within `window`."""

    name: str
    weight: float
    scale: Scale
    max_age: timedelta | None = None
    from_surveys: str | None = None
    window: timedelta | None = None
    ces: CesThresholds | None = None  # per-KPI override of ScoringModel.ces, CES KPIs only


@dataclass(frozen=True)
class Bucket:
    """A named score band: scores below `below` (None for the last, open-ended bucket)."""

    name: str
    below: float | None
    color: str


@dataclass(frozen=True)
class ScoringModel:
    """A validated scoring model; `canonical()` is the normalized form that is hashed and diffed."""

    version: str
    kpis: tuple[Kpi, ...]
    buckets: tuple[Bucket, ...]
    missing_inputs: str = "renormalize"
    ces: CesThresholds = field(default_factory=CesThresholds)

    def bucket_for(self, score: float) -> Bucket:
        """The first bucket whose `below` exceeds the score, else the last (open-ended) bucket."""
        for bucket in self.buckets:
            if bucket.below is not None and score < bucket.below:
                return bucket
        return self.buckets[-1]

    def kpi(self, name: str) -> Kpi:
        """The KPI called `name`, or KeyError."""
        for kpi in self.kpis:
            if kpi.name == name:
                return kpi
        raise KeyError(name)

    def ces_for(self, kpi: Kpi) -> CesThresholds:
        """The CES thresholds that apply to a KPI: its own override or the model-wide setting."""
        return kpi.ces or self.ces

    def canonical(self) -> dict[str, Any]:
        """JSON-able normalized form: defaults filled in, KPIs sorted by name, integral numbers as ints."""
        return {
            "version": self.version,
            "missing_inputs": self.missing_inputs,
            "ces": _ces_dict(self.ces),
            "kpis": [_kpi_dict(kpi) for kpi in sorted(self.kpis, key=lambda k: k.name)],
            "buckets": [{"name": b.name, "below": _num(b.below), "color": b.color} for b in self.buckets],
        }

    def digest(self) -> str:
        """sha256 hex digest of the canonical form (sorted keys, compact JSON)."""
        return canonical_digest(self.canonical(), MODEL_DIGEST)


def _num(value: float | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else float(value)


def duration_text(value: timedelta) -> str:
    """A duration as model files spell it: whole days as `7d` (not `1w`), finer units when needed."""
    return f"{value.days}d" if value % timedelta(days=1) == timedelta(0) else format_duration(value)


def _dur(value: timedelta | None) -> str | None:
    return None if value is None else duration_text(value)


def _ces_dict(ces: CesThresholds | None) -> dict[str, Any] | None:
    if ces is None:
        return None
    return {"positive_at": _num(ces.positive_at), "negative_at": _num(ces.negative_at)}


def _kpi_dict(kpi: Kpi) -> dict[str, Any]:
    return {
        "name": kpi.name,
        "weight": _num(kpi.weight),
        "scale": {"min": _num(kpi.scale.min), "max": _num(kpi.scale.max)},
        "max_age": _dur(kpi.max_age),
        "from_surveys": kpi.from_surveys,
        "window": _dur(kpi.window),
        "ces": _ces_dict(kpi.ces),
    }


# --- parsing -------------------------------------------------------------------------------------------


class _Problems:
    """Collects `source:line: message` strings so that every problem is reported at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[tuple[int, str]] = []

    def add(self, container: Any, key: str | int | None, message: str) -> None:
        """Record a problem at the line of `container[key]` (or of the container when key is None)."""
        self.found.append((max(1, line_of(container, key)), message))

    def fail_if_any(self) -> None:
        """Raise ValidationFailed with every problem, in file order."""
        if self.found:
            ordered = sorted(self.found, key=lambda problem: problem[0])
            raise ValidationFailed([f"{self.source}:{line}: {message}" for line, message in ordered])

    def unknown_keys(self, mapping: LineDict, allowed: tuple[str, ...], where: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.add(mapping, key, f"{where}unknown key {key!r}{suggest(key, allowed)}")

    def choice(self, mapping: LineDict, key: str, choices: tuple[str, ...], label: str) -> str | None:
        """mapping[key] if it is one of `choices`, else record `unknown <label> 'x' (did you mean...)`."""
        value = mapping[key]
        if value in choices:
            return str(value)
        hint = suggest(value, choices) if isinstance(value, str) else ""
        expected = f"{', '.join(choices[:-1])} or {choices[-1]}"
        self.add(mapping, key, f"{label} {value!r}{hint}; expected {expected}")
        return None

    def once(self, seen: dict[str, int], name: Any, item: LineDict, label: str) -> None:
        """Record a duplicate when `name` was already seen; remember where it was first defined."""
        if not isinstance(name, str):
            return
        if name in seen:
            self.add(item, "name", f"duplicate {label} name {name!r} (first defined on line {seen[name]})")
        seen.setdefault(name, line_of(item, "name"))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: Any) -> str:
    return str(_num(value)) if _is_number(value) else repr(value)


def parse_model(text: str, source: str) -> ScoringModel:
    """Parse and validate scoring-model YAML; raise ValidationFailed listing every `source:line:` problem."""
    try:
        data = load_text(text, source)
    except InputError as exc:
        raise ValidationFailed([str(exc)]) from None
    problems = _Problems(source)
    if not isinstance(data, LineDict):
        raise ValidationFailed([f"{source}:{max(1, line_of(data))}: expected a mapping with version, kpis and buckets"])
    problems.unknown_keys(data, TOP_KEYS, "")
    version = _parse_version(data, problems)
    policy = "renormalize"
    if "missing_inputs" in data:
        policy = problems.choice(data, "missing_inputs", MISSING_POLICIES, "unknown missing_inputs policy") or policy
    ces = _parse_ces(data, problems, "") if "ces" in data else None
    kpis = _parse_kpis(data, problems)
    buckets = _parse_buckets(data, problems)
    problems.fail_if_any()
    return ScoringModel(version, tuple(kpis), tuple(buckets), policy, ces or CesThresholds())


def load_model_file(path: str | Path) -> ScoringModel:
    """Read and parse a scoring-model file; every problem names the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_model(text, str(path))


def _parse_version(data: LineDict, problems: _Problems) -> str:
    value = data.get("version")
    if "version" not in data:
        problems.add(data, None, "missing required key 'version'")
    elif not isinstance(value, str) or not value.strip():
        hint = ' (quote it, like version: "2026.11", or YAML reads a number)' if _is_number(value) else ""
        problems.add(data, "version", f"version must be non-empty text, got {value!r}{hint}")
    else:
        return value.strip()
    return ""


def _parse_ces(parent: LineDict, problems: _Problems, where: str) -> CesThresholds | None:
    value = parent["ces"]
    if not isinstance(value, LineDict):
        problems.add(parent, "ces", f"{where}ces must be a mapping {{positive_at, negative_at}}")
        return None
    problems.unknown_keys(value, CES_KEYS, f"{where}ces: ")
    result = {"positive_at": CesThresholds.positive_at, "negative_at": CesThresholds.negative_at}
    for name in CES_KEYS:
        number = value.get(name, result[name])
        if not _is_number(number) or not 0 < number <= 1:
            problems.add(value, name, f"{where}ces {name} must be a fraction in (0, 1], got {number!r}")
            return None
        result[name] = float(number)
    if result["negative_at"] >= result["positive_at"]:
        problems.add(
            value,
            None,
            f"{where}ces negative_at ({_fmt(result['negative_at'])}) must be below "
            f"positive_at ({_fmt(result['positive_at'])})",
        )
    return CesThresholds(result["positive_at"], result["negative_at"])


def _required_list(data: LineDict, key: str, problems: _Problems) -> LineList:
    value = data.get(key)
    if key not in data:
        problems.add(data, None, f"missing required key {key!r}")
    elif not isinstance(value, LineList) or not value:
        problems.add(data, key, f"{key} must be a non-empty list")
    else:
        return value
    return LineList()


def _parse_kpis(data: LineDict, problems: _Problems) -> list[Kpi]:
    items = _required_list(data, "kpis", problems)
    kpis: list[Kpi] = []
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
            kpis.append(kpi)
    if weights and all(_is_number(w) for w in weights) and abs(sum(weights) - 100) > 1e-9:
        problems.add(data, "kpis", f"kpi weights sum to {_fmt(round(sum(weights), 6))}, expected 100")
    return kpis


def _parse_kpi(item: LineDict, index: int, problems: _Problems) -> Kpi | None:
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
    elif not _is_number(weight) or weight <= 0:
        problems.add(item, "weight", f"{where}weight must be a positive number, got {weight!r}")
    kind = None
    if "from_surveys" in item:
        kind = problems.choice(item, "from_surveys", SURVEY_KINDS, f"{where}unknown from_surveys kind")
    scale = _parse_scale(item, kind, where, problems)
    max_age = _parse_age(item, "max_age", where, problems)
    window = _parse_age(item, "window", where, problems)
    if "window" in item and "from_surveys" not in item:
        problems.add(item, "window", f"{where}window only applies to from_surveys KPIs")
    ces = None
    if "ces" in item and kind == "ces":
        ces = _parse_ces(item, problems, where)
    elif "ces" in item:
        problems.add(item, "ces", f"{where}ces thresholds only apply to from_surveys: ces")
    if len(problems.found) > count or scale is None:
        return None
    if kind is not None and window is None:
        window = max_age or DEFAULT_SURVEY_WINDOW
    return Kpi(name, float(weight), scale, max_age, kind, window, ces)


def _parse_scale(item: LineDict, kind: str | None, where: str, problems: _Problems) -> Scale | None:
    value = item.get("scale")
    if "scale" not in item:
        if kind is not None:
            return SURVEY_SCALES[kind]
        if "from_surveys" not in item:
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
        elif not _is_number(value[key]):
            problems.add(value, key, f"{where}scale {key} must be a number, got {value[key]!r}")
        else:
            bounds.append(float(value[key]))
    if len(bounds) == 2 and bounds[0] == bounds[1]:
        problems.add(value, None, f"{where}scale min and max are both {_fmt(bounds[0])}; they must differ")
    return Scale(bounds[0], bounds[1]) if len(bounds) == 2 and bounds[0] != bounds[1] else None


def _parse_age(item: LineDict, key: str, where: str, problems: _Problems) -> timedelta | None:
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


def _parse_buckets(data: LineDict, problems: _Problems) -> list[Bucket]:
    items = _required_list(data, "buckets", problems)
    buckets: list[Bucket] = []
    seen: dict[str, int] = {}
    previous: float | None = None
    for index, item in enumerate(items):
        if not isinstance(item, LineDict):
            problems.add(items, index, f"buckets[{index}] must be a mapping with name and color")
            continue
        bucket = _parse_bucket(item, index, index == len(items) - 1, previous, problems)
        problems.once(seen, item.get("name"), item, "bucket")
        previous = bucket.below if bucket.below is not None else previous
        buckets.append(bucket)
    return buckets


def _parse_bucket(item: LineDict, index: int, last: bool, previous: float | None, problems: _Problems) -> Bucket:
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.add(item, "name", f"buckets[{index}]: name must be non-empty text, got {name!r}")
        name = f"buckets[{index}]"
    where = f"bucket {name!r}: "
    problems.unknown_keys(item, BUCKET_KEYS, where)
    color = item.get("color")
    if "color" not in item:
        problems.add(item, None, f"{where}missing required key 'color'")
        color = ""
    elif not isinstance(color, str) or not color.strip():
        problems.add(item, "color", f"{where}color must be non-empty text, got {color!r}")
        color = ""
    below: Any = item.get("below")
    if last and below is not None:
        problems.add(item, "below", f"{where}the last bucket must not have 'below' (it is open-ended)")
    elif not last and below is None:
        problems.add(item, None, f"{where}needs 'below' (only the last bucket is open-ended)")
    elif not last and (not _is_number(below) or not 0 < below <= 100):
        problems.add(item, "below", f"{where}below must be a number in (0, 100], got {below!r}")
    elif not last:
        if previous is not None and below <= previous:
            message = f"below {_fmt(below)} must be greater than the previous bucket's {_fmt(previous)}"
            problems.add(item, "below", f"{where}{message} (thresholds must strictly increase)")
        return Bucket(name, float(below), color)
    return Bucket(name, None, color)


# --- diffs ---------------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, dict) and set(value) == {"min", "max"}:
        return f"{value['min']}..{value['max']}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_show(v)}" for k, v in value.items())
    return str(value)


def _diff_fields(prefix: str, old: dict[str, Any], new: dict[str, Any], keys: Iterable[str]) -> list[str]:
    return [
        f"{prefix}{key} {_show(old.get(key))} -> {_show(new.get(key))}" for key in keys if old.get(key) != new.get(key)
    ]


def _diff_named(label: str, old: list[dict[str, Any]], new: list[dict[str, Any]], brief: str) -> list[str]:
    before = {item["name"]: item for item in old}
    after = {item["name"]: item for item in new}
    lines: list[str] = []
    for name, item in before.items():
        if name not in after:
            lines.append(f"{label} {name}: removed")
        else:
            keys = [key for key in dict.fromkeys([*item, *after[name]]) if key != "name"]
            lines.extend(_diff_fields(f"{label} {name}: ", item, after[name], keys))
    lines.extend(
        f"{label} {name}: added ({brief} {_show(item.get(brief))})"
        for name, item in after.items()
        if name not in before
    )
    return lines


def diff_models(approved: ScoringModel, live: ScoringModel) -> list[str]:
    """Every difference between two models in words, e.g. `kpi usage: weight 30 -> 25`; empty when equal."""
    old, new = approved.canonical(), live.canonical()
    lines = _diff_fields("", old, new, ("version", "missing_inputs"))
    lines.extend(_diff_fields("ces ", old["ces"], new["ces"], CES_KEYS))
    lines.extend(_diff_named("kpi", old["kpis"], new["kpis"], "weight"))
    lines.extend(_diff_named("bucket", old["buckets"], new["buckets"], "below"))
    old_order = [b["name"] for b in old["buckets"]]
    new_order = [b["name"] for b in new["buckets"]]
    if old_order != new_order and set(old_order) == set(new_order):
        lines.append(f"bucket order: {', '.join(old_order)} -> {', '.join(new_order)}")
    return lines
