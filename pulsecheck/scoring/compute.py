"""Score one account as of a moment from plain readings and survey responses (no database, no clock).

Rules, in the order they apply:
- Only readings observed at or before `as_of` count; readings for KPIs the model does not name are
  ignored, and so are readings for survey KPIs (those come from survey responses only).
- The newest reading per KPI is used. Two or more readings of one KPI at that same newest `observed_at`
  with different values give a `duplicate` finding; the value used is the one from the source that sorts
  last alphabetically (the largest value among equal sources), so reruns always agree.
- A survey KPI uses responses of its kind with `as_of - window <= responded_at <= as_of`.
- `stale`: the newest input is older than the KPI's max_age at `as_of` (the value is still used).
- `missing`: no reading, or no survey response in the window.
- Any finding (stale, missing or duplicate) marks the result provisional (DESIGN.md section 7).
- missing_inputs: `renormalize` rescales the present KPIs' weights to sum 100, `zero` lets a missing KPI
  contribute 0, `fail` gives no score (None) when any KPI is missing. With no input at all there is no
  score under any policy.
- NPS answers recorded on a range other than 0..10 are rescaled onto 0..10; a survey score outside
  0..max_score raises ValueError (bad data to fix at import).
- A formula KPI (npv, ltv, tenure_months, arr_growth_pct) is computed from `FormulaInputs` as of `as_of`;
  missing inputs make it `missing`, like a KPI without a reading.
- A tracked KPI (weight 0) is stored with its value and rating but neither counts in the score nor gives a
  finding when it has no value.
- Each KPI with a value gets a rating (concern, neutral, strength); each group a subscore: the weighted mean
  of its scored KPIs' normalized values, renormalized (or zeroed, or failed) like the score.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, cast

from pulsecheck.scoring import formulas
from pulsecheck.scoring.formulas import FormulaInputs
from pulsecheck.scoring.model import Kpi, Scale, ScoringModel, duration_text

OK, STALE, MISSING = "ok", "stale", "missing"


class Reading(NamedTuple):  # a tuple: scoring makes one per KPI per account, a frozen dataclass costs 3x
    """One observed KPI value for an account."""

    kpi: str
    value: float
    observed_at: datetime
    source: str = ""


class SurveyResponse(NamedTuple):
    """One survey answer; `kind` is nps, csat or ces, `score` is on 0..max_score."""

    kind: str
    score: float
    max_score: float
    responded_at: datetime


@dataclass(slots=True)  # not frozen: made once per KPI per account, and a frozen __init__ costs twice as much
class Component:
    """One KPI's part of a score: `contribution` = normalized x effective_weight / 100."""

    kpi: str
    raw: float | None
    normalized: float | None
    weight: float
    effective_weight: float
    contribution: float
    observed_at: datetime | None
    status: str  # ok | stale | missing
    rating: str | None = None  # concern | neutral | strength; None when missing


@dataclass(frozen=True)
class Finding:
    """A problem with the inputs: kind is stale, missing or duplicate."""

    kind: str
    kpi: str
    detail: str


@dataclass(frozen=True)
class ScoreResult:
    """The score (0..100, 2 decimals; None when it cannot be computed), its bucket and why."""

    score: float | None
    bucket: str | None
    components: list[Component]
    findings: list[Finding] = field(default_factory=list)
    provisional: bool = False
    model_version: str = ""
    groups: dict[str, float | None] = field(default_factory=dict)  # subscore per group, 0..100, 2 decimals


@dataclass(slots=True)
class _Input:
    raw: float | None
    observed_at: datetime | None
    status: str
    why: str = ""  # what is missing, for a formula KPI


NO_INPUTS = FormulaInputs()
READING, SURVEY, FORMULA = 0, 1, 2  # where a KPI's value comes from


class _Step(NamedTuple):
    """One KPI as scoring walks it: what `score_account` would otherwise look up on the KPI for every account."""

    kpi: Kpi
    name: str
    source: int  # READING, SURVEY or FORMULA
    weight: float
    scored: bool
    scale: Scale | None
    low: float  # scale.min, and scale.max - scale.min: the normalizer's terms
    span: float
    max_age: timedelta | None  # None for a tracked KPI (it gives no finding)


class _Plan:
    """What scoring needs of one model, worked out once per model rather than once per account: the KPIs in
    order with their normalizers, and each group's members as positions in that order."""

    def __init__(self, model: ScoringModel) -> None:
        index = {kpi.name: position for position, kpi in enumerate(model.kpis)}
        self.steps = tuple(
            _Step(
                kpi, kpi.name, SURVEY if kpi.from_surveys is not None else FORMULA if kpi.formula is not None
                else READING, kpi.weight, kpi.scored, kpi.scale, kpi.scale.min if kpi.scale else 0.0,
                kpi.scale.max - kpi.scale.min if kpi.scale else 1.0, kpi.max_age if kpi.scored else None,
            )  # fmt: skip
            for kpi in model.kpis
        )
        self.surveys = any(step.source == SURVEY for step in self.steps)
        self.renormalize = model.missing_inputs == "renormalize"
        self.groups = tuple(
            (group, tuple((index[name], weight) for name, weight in members), all_weight)
            for group, members, all_weight in model.group_weights
        )


def _plan(model: ScoringModel) -> _Plan:
    # Kept on the model object, as its cached_property values are: the model is immutable, and a scoring run
    # passes the same object for every account.
    plan = model.__dict__.get("_score_plan")
    if plan is None:
        plan = model.__dict__["_score_plan"] = _Plan(model)
    return cast(_Plan, plan)


def score_account(
    model: ScoringModel,
    readings: Iterable[Reading],
    surveys: Iterable[SurveyResponse],
    as_of: datetime,
    derived_from: FormulaInputs = NO_INPUTS,
) -> ScoreResult:
    """Score one account with `model` from the inputs known at `as_of`; findings list bad inputs."""
    plan = _plan(model)
    by_kpi: dict[str, list[Reading]] = {}
    for reading in readings:
        if reading.observed_at <= as_of:
            same = by_kpi.get(reading.kpi)
            if same is None:
                by_kpi[reading.kpi] = [reading]
            else:
                same.append(reading)
    responses = [s for s in surveys if s.responded_at <= as_of] if plan.surveys else []
    findings: list[Finding] = []
    inputs: list[_Input] = []
    for step in plan.steps:
        if step.source == READING:
            found_readings = by_kpi.get(step.name)
            if found_readings is not None and len(found_readings) == 1:  # the common case: nothing to compare
                newest = found_readings[0]
                found = _Input(newest.value, newest.observed_at, OK)
            else:
                found = _reading_input(step.kpi, found_readings or [], findings)
        elif step.source == SURVEY:
            found = _survey_input(model, step.kpi, responses, as_of)
        else:
            assert step.kpi.formula is not None
            value, why = formulas.derive(step.kpi.formula, derived_from, model.discount_rate, as_of.date())
            found = _Input(value, as_of if value is not None else None, OK if value is not None else MISSING, why)
        observed = found.observed_at
        if (
            observed is None
            or found.status == MISSING
            or (step.max_age is not None and as_of - observed > step.max_age)
        ):
            found = _with_status(step.kpi, found, as_of, findings)
        inputs.append(found)
    return _combine(model, plan, inputs, findings)


def _reading_input(kpi: Kpi, readings: list[Reading], findings: list[Finding]) -> _Input:
    if not readings:
        return _Input(None, None, MISSING)
    if len(readings) == 1:  # the common case: one newest reading, nothing to compare
        return _Input(readings[0].value, readings[0].observed_at, OK)
    newest = max(r.observed_at for r in readings)
    tied = sorted((r for r in readings if r.observed_at == newest), key=lambda r: (r.source, r.value))
    chosen = tied[-1]
    if len({r.value for r in tied}) > 1:
        values = ", ".join(f"{r.value:g} from {r.source or '(no source)'}" for r in tied)
        findings.append(
            Finding(
                "duplicate",
                kpi.name,
                f"{len(tied)} readings at {newest.isoformat()} disagree ({values}); "
                f"using {chosen.value:g} from {chosen.source or '(no source)'}",
            )
        )
    return _Input(chosen.value, newest, OK)


def _survey_input(model: ScoringModel, kpi: Kpi, responses: Sequence[SurveyResponse], as_of: datetime) -> _Input:
    assert kpi.window is not None  # parse_model fills it in for every survey KPI
    start = as_of - kpi.window
    window = [r for r in responses if r.kind == kpi.from_surveys and start <= r.responded_at]
    if not window:
        return _Input(None, None, MISSING)
    top = formulas.NPS_MAX
    if kpi.from_surveys == "nps":
        # NPS is defined on 0..10; answers recorded on another range are rescaled onto it.
        value = formulas.nps([r.score if r.max_score == top else r.score * top / r.max_score for r in window])
    elif kpi.from_surveys == "csat":
        value = formulas.csat([(r.score, r.max_score) for r in window])
    else:
        thresholds = model.ces_for(kpi)
        pairs = [(r.score, r.max_score) for r in window]
        value = formulas.ces(pairs, thresholds.positive_at, thresholds.negative_at)
    newest = window[0].responded_at
    for response in window:
        if response.responded_at > newest:
            newest = response.responded_at
    return _Input(value, newest, OK)


def _with_status(kpi: Kpi, found: _Input, as_of: datetime, findings: list[Finding]) -> _Input:
    if found.status == MISSING or found.observed_at is None:
        if not kpi.scored:
            return found  # a tracked KPI without a value is not a problem of the score
        what = f"no {kpi.from_surveys} survey response in the last {_days(kpi)}" if kpi.from_surveys else "no reading"
        if kpi.formula is not None:
            what = f"{kpi.formula}: {found.why or 'inputs missing'}"
        findings.append(Finding(MISSING, kpi.name, f"{what} as of {as_of.isoformat()}"))
        return found
    if kpi.scored and kpi.max_age is not None and as_of - found.observed_at > kpi.max_age:
        age = as_of - found.observed_at
        findings.append(
            Finding(
                STALE,
                kpi.name,
                f"newest input from {found.observed_at.isoformat()} is {_age(age)} old "
                f"(max_age {duration_text(kpi.max_age)}); value still used",
            )
        )
        return _Input(found.raw, found.observed_at, STALE)
    return found


def _days(kpi: Kpi) -> str:
    return duration_text(kpi.window) if kpi.window is not None else "window"


def _age(age: timedelta) -> str:
    return f"{age.days}d" if age.days >= 1 else f"{int(age.total_seconds() // 3600)}h"


def _combine(model: ScoringModel, plan: _Plan, inputs: list[_Input], findings: list[Finding]) -> ScoreResult:
    weights: list[float] = []  # the scored KPIs with a value, in model order (summed as before: same float)
    any_missing = False
    for step, found in zip(plan.steps, inputs, strict=True):
        if step.scored:
            if found.status == MISSING:
                any_missing = True
            else:
                weights.append(step.weight)
    present_weight = sum(weights)
    renormalize = plan.renormalize
    components: list[Component] = []
    contributions: list[float] = []
    for step, found in zip(plan.steps, inputs, strict=True):
        raw = found.raw
        if raw is None or found.status == MISSING:
            components.append(Component(step.name, None, None, step.weight, 0.0, 0.0, None, MISSING))
            contributions.append(0.0)
            continue
        effective = step.weight * 100.0 / present_weight if renormalize and step.scored else step.weight
        if step.scale is None:
            normalized = None
            contribution = 0.0
        else:  # Scale.normalize, its terms worked out once
            normalized = min(100.0, max(0.0, (raw - step.low) / step.span * 100.0))
            contribution = normalized * effective / 100.0
        contributions.append(contribution)
        components.append(
            Component(
                step.name, raw, normalized, step.weight, effective, contribution, found.observed_at, found.status,
                step.kpi.rating(raw, normalized),
            )  # fmt: skip
        )
    provisional = bool(findings)
    groups = _subscores(model, plan, components) if plan.groups else {}
    if present_weight == 0 or (any_missing and model.missing_inputs == "fail"):
        return ScoreResult(None, None, components, findings, True, model.version, groups)
    score = round(min(100.0, max(0.0, sum(contributions))), 2)
    return ScoreResult(score, model.bucket_for(score).name, components, findings, provisional, model.version, groups)


def _subscores(model: ScoringModel, plan: _Plan, components: list[Component]) -> dict[str, float | None]:
    """Each group's weighted mean of its scored KPIs' normalized values, with missing ones handled as the score
    handles them: left out (renormalize), counted as 0 (zero), or no subscore at all (fail)."""
    if not plan.groups:
        return {}
    policy = model.missing_inputs
    result: dict[str, float | None] = {}
    for group, members, all_weight in plan.groups:
        weighted = present_weight = 0.0
        present = 0
        for position, weight in members:
            value = components[position].normalized
            if value is not None:
                weighted += weight * value
                present_weight += weight
                present += 1
        total = all_weight if policy == "zero" else present_weight
        if not present or total == 0 or (policy == "fail" and present < len(members)):
            result[group] = None
        else:
            result[group] = round(weighted / total, 2)
    return result


def contribution_changes(prev: Sequence[Component], cur: Sequence[Component]) -> list[tuple[str, float]]:
    """Per-KPI change in contribution from `prev` to `cur` (absent counts as 0), most negative first:
    the answer to "why did the score drop". Deltas are rounded to 2 decimals; ties sort by KPI name."""
    before = {c.kpi: c.contribution for c in prev}
    after = {c.kpi: c.contribution for c in cur}
    names = dict.fromkeys([*before, *after])
    changes = [(name, round(after.get(name, 0.0) - before.get(name, 0.0), 2)) for name in names]
    return sorted(changes, key=lambda change: (change[1], change[0]))
