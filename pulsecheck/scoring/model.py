"""The scoring model: KPIs, weights, scales and buckets, its canonical form (hashed and diffed) and diffs in words.

Parsing a model file is `scoring.schema`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pulsecheck.jsontext import MODEL_DIGEST, canonical_digest
from pulsecheck.timeutil import format_duration

CES_KEYS = ("positive_at", "negative_at")


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
            "buckets": [{"name": b.name, "below": canonical_number(b.below), "color": b.color} for b in self.buckets],
        }

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
    return {
        "name": kpi.name,
        "weight": canonical_number(kpi.weight),
        "scale": {"min": canonical_number(kpi.scale.min), "max": canonical_number(kpi.scale.max)},
        "max_age": _dur(kpi.max_age),
        "from_surveys": kpi.from_surveys,
        "window": _dur(kpi.window),
        "ces": _ces_dict(kpi.ces),
    }


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
