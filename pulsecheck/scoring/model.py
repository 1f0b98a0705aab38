"""The scoring model: KPIs, weights, scales, groups, concern/strength thresholds and buckets, its canonical form
(hashed and diffed) and diffs in words.

Parsing a model file is `scoring.schema`. What a flat model (no groups, thresholds, formulas or statuses) writes
in its canonical form is unchanged, so the digests of models approved before groups existed still verify.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any, TypeVar

from pulsecheck.jsontext import MODEL_DIGEST, canonical_digest
from pulsecheck.timeutil import format_duration

CES_KEYS = ("positive_at", "negative_at")
FORMULAS = ("npv", "ltv", "tenure_months", "arr_growth_pct")
CONCERN, NEUTRAL, STRENGTH = "concern", "neutral", "strength"
RATINGS = (CONCERN, NEUTRAL, STRENGTH)
STATUS_COLORS = {CONCERN: "orange", STRENGTH: "green"}  # what a model that names none gets
DEFAULT_CONCERN_BELOW = 40.0  # normalized: a KPI without its own thresholds is a concern below 40...
DEFAULT_STRENGTH_AT = 80.0  # ... and a strength from 80
_T = TypeVar("_T")
_SIDES = {"below": operator.lt, "above": operator.gt, "at_least": operator.ge, "at_most": operator.le}


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


@dataclass(frozen=True)
class Threshold:
    """A cut-off in a KPI's raw units: `below`/`above` (concern) or `at_least`/`at_most` (strength)."""

    op: str
    value: float

    def holds(self, raw: float) -> bool:
        """Whether a raw value is on the threshold's side."""
        return bool(_SIDES.get(self.op, operator.le)(raw, self.value))


@dataclass(frozen=True)
class Kpi:
    """One input; `from_surveys` KPIs come from survey responses within `window`, `formula` KPIs from a built-in
    formula; weight 0 is a tracked KPI (stored and seen by rules, not scored)."""

    name: str
    weight: float
    scale: Scale | None  # None only for a tracked KPI that gives none
    max_age: timedelta | None = None
    from_surveys: str | None = None
    window: timedelta | None = None
    ces: CesThresholds | None = None  # per-KPI override of ScoringModel.ces, CES KPIs only
    group: str | None = None
    concern: Threshold | None = None
    strength: Threshold | None = None
    formula: str | None = None

    @property
    def scored(self) -> bool:
        """False for a tracked KPI (weight 0)."""
        return self.weight > 0

    def normalize(self, raw: float) -> float | None:
        """The raw value on 0..100, or None without a scale."""
        return None if self.scale is None else self.scale.normalize(raw)

    def rating(self, raw: float | None, normalized: float | None = None) -> str | None:
        """concern, neutral or strength for a raw value (None when missing): the KPI's own thresholds, else
        the default cut-offs on the normalized value (given, or worked out); a concern wins over a strength."""
        if raw is None:
            return None
        return self.rater(raw, self.normalize(raw) if normalized is None else normalized)

    @cached_property
    def rater(self) -> Callable[[float, float | None], str]:
        """`rating` of a present raw value and its normalized value (None without a scale), the thresholds
        looked up once per KPI rather than once per account scored."""
        concern, strength = self.concern, self.strength
        concern_side = None if concern is None else _SIDES.get(concern.op, operator.le)
        strength_side = None if strength is None else _SIDES.get(strength.op, operator.le)
        concern_at = concern.value if concern is not None else DEFAULT_CONCERN_BELOW
        strength_at = strength.value if strength is not None else DEFAULT_STRENGTH_AT

        def rate(raw: float, normalized: float | None) -> str:
            if concern_side is not None:
                if concern_side(raw, concern_at):
                    return CONCERN
            elif normalized is not None and normalized < concern_at:
                return CONCERN
            if strength_side is not None:
                return STRENGTH if strength_side(raw, strength_at) else NEUTRAL
            return STRENGTH if normalized is not None and normalized >= strength_at else NEUTRAL

        return rate


@dataclass(frozen=True)
class Group:
    """A node of the groups tree: its label and the names of its child groups."""

    name: str
    label: str
    children: tuple[str, ...] = ()


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
    groups: tuple[Group, ...] = ()
    statuses: dict[str, str] = field(default_factory=lambda: dict(STATUS_COLORS))
    discount_rate: float | None = None  # for npv, per period; an account's financials may override it

    @cached_property
    def scored_kpis(self) -> tuple[Kpi, ...]:
        """The KPIs with a weight (tracked ones left out)."""
        return tuple(kpi for kpi in self.kpis if kpi.scored)

    @cached_property
    def group_members(self) -> dict[str, tuple[Kpi, ...]]:
        """Each group's scored KPIs, its own and its descendants', in model order (worked out once per model)."""
        children = {group.name: group.children for group in self.groups}
        result: dict[str, tuple[Kpi, ...]] = {}
        for group in self.groups:
            names: set[str] = set()
            stack = [group.name]
            while stack:  # parse_model refuses cycles, so this ends
                name = stack.pop()
                names.add(name)
                stack.extend(children.get(name, ()))
            result[group.name] = tuple(k for k in self.kpis if k.scored and k.group in names)
        return result

    @cached_property
    def group_weights(self) -> tuple[tuple[str, tuple[tuple[str, float], ...], float], ...]:
        """(group, its scored KPIs as (name, weight), their total weight) per group: what subscores need,
        worked out once per model rather than once per account."""
        return tuple(
            (group, tuple((k.name, k.weight) for k in kpis), sum(k.weight for k in kpis))
            for group, kpis in self.group_members.items()
        )

    def group_weight(self, name: str) -> float:
        """A group's weight: the sum of its KPIs' weights (its descendants' included)."""
        return sum(kpi.weight for kpi in self.group_members[name])

    def status_color(self, rating: str | None) -> str | None:
        """The colour of a KPI rating (concern, strength); None for neutral or missing."""
        return self.statuses.get(rating) if rating else None

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
        result: dict[str, Any] = {
            "version": self.version,
            "missing_inputs": self.missing_inputs,
            "ces": _ces_dict(self.ces),
            "kpis": [_kpi_dict(kpi) for kpi in sorted(self.kpis, key=lambda k: k.name)],
            "buckets": [{"name": b.name, "below": canonical_number(b.below), "color": b.color} for b in self.buckets],
        }
        # Written only when used, so that a flat model's canonical form (and digest) is what it always was.
        if self.groups:
            result["groups"] = [
                {"name": g.name, "label": g.label, "groups": sorted(g.children)}
                for g in sorted(self.groups, key=lambda g: g.name)
            ]
        if self.statuses != STATUS_COLORS:
            result["statuses"] = dict(sorted(self.statuses.items()))
        if self.discount_rate is not None:
            result["discount_rate"] = canonical_number(self.discount_rate)
        return result

    def as_data(self) -> dict[str, Any]:
        """Every field, in the model's own order, as JSON-able data (durations as days, seconds, microseconds):
        stored beside a model's text when it is approved, so that a read makes the model again (`from_data`)
        without the YAML parser and the checks it passed then (issue 17)."""
        return {
            "version": self.version,
            "kpis": [_kpi_data(kpi) for kpi in self.kpis],
            "buckets": [[bucket.name, bucket.below, bucket.color] for bucket in self.buckets],
            "missing_inputs": self.missing_inputs,
            "ces": [self.ces.positive_at, self.ces.negative_at],
            "groups": [[group.name, group.label, list(group.children)] for group in self.groups],
            "statuses": dict(self.statuses),
            "discount_rate": self.discount_rate,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ScoringModel:
        """The model whose `as_data` is `data`; KeyError, TypeError or ValueError for data it cannot have given
        (the caller compares the result's digest with the approved one: stored data is not trusted)."""
        return cls(
            data["version"],
            tuple(_kpi_of(item) for item in data["kpis"]),
            tuple(Bucket(name, below, color) for name, below, color in data["buckets"]),
            data["missing_inputs"],
            CesThresholds(*data["ces"]),
            tuple(Group(name, label, tuple(children)) for name, label, children in data["groups"]),
            dict(data["statuses"]),
            data["discount_rate"],
        )

    def digest(self) -> str:
        """sha256 hex digest of the canonical form (sorted keys, compact JSON)."""
        return canonical_digest(self.canonical(), MODEL_DIGEST)


def canonical_number(value: float | None) -> int | float | None:
    """A number as the canonical form writes it: integral values as ints (30, not 30.0)."""
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
    return {"positive_at": canonical_number(ces.positive_at), "negative_at": canonical_number(ces.negative_at)}


def _kpi_dict(kpi: Kpi) -> dict[str, Any]:
    scale = kpi.scale
    result: dict[str, Any] = {
        "name": kpi.name,
        "weight": canonical_number(kpi.weight),
        "scale": None if scale is None else {"min": canonical_number(scale.min), "max": canonical_number(scale.max)},
        "max_age": _dur(kpi.max_age),
        "from_surveys": kpi.from_surveys,
        "window": _dur(kpi.window),
        "ces": _ces_dict(kpi.ces),
    }
    for key, threshold in (("concern", kpi.concern), ("strength", kpi.strength)):
        if threshold is not None:
            result[key] = {threshold.op: canonical_number(threshold.value)}
    if kpi.group is not None:
        result["group"] = kpi.group
    if kpi.formula is not None:
        result["formula"] = kpi.formula
    return result


# --- diffs ---------------------------------------------------------------------------------------------


def _kpi_data(kpi: Kpi) -> dict[str, Any]:
    def duration(value: timedelta | None) -> list[int] | None:
        return None if value is None else [value.days, value.seconds, value.microseconds]

    def pair(value: Scale | CesThresholds | Threshold | None) -> list[Any] | None:
        return None if value is None else list(astuple(value))

    return {"name": kpi.name, "weight": kpi.weight, "scale": pair(kpi.scale), "max_age": duration(kpi.max_age),
            "from_surveys": kpi.from_surveys, "window": duration(kpi.window), "ces": pair(kpi.ces),
            "group": kpi.group, "concern": pair(kpi.concern), "strength": pair(kpi.strength), "formula": kpi.formula}


def _kpi_of(data: dict[str, Any]) -> Kpi:
    def duration(value: list[int] | None) -> timedelta | None:
        return None if value is None else timedelta(*value)

    def made(kind: Callable[..., _T], value: list[Any] | None) -> _T | None:
        return None if value is None else kind(*value)

    return Kpi(data["name"], data["weight"], made(Scale, data["scale"]), duration(data["max_age"]),
               data["from_surveys"], duration(data["window"]), made(CesThresholds, data["ces"]), data["group"],
               made(Threshold, data["concern"]), made(Threshold, data["strength"]), data["formula"])


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
    lines = _diff_fields("", old, new, ("version", "missing_inputs", "discount_rate", "statuses"))
    lines.extend(_diff_fields("ces ", old["ces"], new["ces"], CES_KEYS))
    lines.extend(_diff_named("group", old.get("groups", []), new.get("groups", []), "label"))
    lines.extend(_diff_named("kpi", old["kpis"], new["kpis"], "weight"))
    lines.extend(_diff_named("bucket", old["buckets"], new["buckets"], "below"))
    old_order = [b["name"] for b in old["buckets"]]
    new_order = [b["name"] for b in new["buckets"]]
    if old_order != new_order and set(old_order) == set(new_order):
        lines.append(f"bucket order: {', '.join(old_order)} -> {', '.join(new_order)}")
    return lines
