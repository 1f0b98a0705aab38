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

from collections.abc import Callable, Iterable, Sequence
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
    rate: Callable[[float, float | None], str]  # Kpi.rater


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
                kpi.rater,
            )  # fmt: skip
            for kpi in model.kpis
        )
        self.surveys = any(step.source == SURVEY for step in self.steps)
        self.renormalize = model.missing_inputs == "renormalize"
        self.fail = model.missing_inputs == "fail"
        self.groups = tuple(
            (group, tuple((index[name], weight) for name, weight in members), all_weight)
            for group, members, all_weight in model.group_weights
        )
        self.effective: dict[float, tuple[float, ...]] = {}

    def effective_weights(self, present_weight: float) -> tuple[float, ...]:
        """Each KPI's effective weight when the scored KPIs with a value weigh `present_weight` together:
        renormalized to sum 100, or as given. Accounts share a few such sums, so each is worked out once."""
        found = self.effective.get(present_weight)
        if found is None:
            if len(self.effective) > 4096:
                self.effective.clear()
            found = self.effective[present_weight] = tuple(
                step.weight * 100.0 / present_weight if self.renormalize and step.scored and present_weight
                else step.weight
                for step in self.steps
            )  # fmt: skip
        return found


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
    # The newest reading per KPI; a KPI read more than once (ties at its newest time, or older readings) keeps
    # all of its readings in `several` for `_reading_input` to pick from. Scoring runs this for every account,
    # so the common case (one reading per KPI) makes no list.
    newest: dict[str, Reading] = {}
    several: dict[str, list[Reading]] | None = None
    for reading in readings:
        if reading.observed_at <= as_of:
            key = reading.kpi
            if key not in newest:
                newest[key] = reading
            elif several is None:
                several = {key: [newest[key], reading]}
            elif key in several:
                several[key].append(reading)
            else:
                several[key] = [newest[key], reading]
    kinds: dict[str, list[SurveyResponse]] = {}
    if plan.surveys:
        for response in surveys:
            if response.responded_at <= as_of:
                same = kinds.get(response.kind)
                if same is None:
                    kinds[response.kind] = [response]
                else:
                    same.append(response)
    findings: list[Finding] = []
    # Each KPI's component, its effective weight and contribution filled in once the weights of the KPIs with
    # a value are known; and those weights, in model order (summed in that order: the same float however it
    # is computed).
    components: list[Component] = []
    weights: list[float] = []
    any_missing = False
    raw: float | None
    observed: datetime | None
    for kpi, name, source, weight, scored, scale, low, span, max_age, rate in plan.steps:
        if source == READING:
            latest = newest.get(name)
            if latest is None:
                raw = observed = None
            elif several is not None and name in several:
                raw, observed = _reading_input(kpi, several[name], findings)
            else:
                raw, observed = latest.value, latest.observed_at
        elif source == SURVEY:
            raw, observed = _survey_input(model, kpi, kinds, as_of)
        else:
            assert kpi.formula is not None
            raw, why = formulas.derive(kpi.formula, derived_from, model.discount_rate, as_of.date())
            observed = as_of if raw is not None else None
            if raw is None and scored:
                findings.append(Finding(MISSING, name, f"{kpi.formula}: {why or 'inputs missing'} as of "
                                        f"{as_of.isoformat()}"))  # fmt: skip
        if observed is None:  # missing: no value, and (for a scored KPI) a finding
            if scored:
                any_missing = True
                if source != FORMULA:
                    findings.append(Finding(MISSING, name, f"{_what(kpi)} as of {as_of.isoformat()}"))
            components.append(Component(name, None, None, weight, 0.0, 0.0, None, MISSING))
            continue
        status = OK
        if max_age is not None and as_of - observed > max_age:
            findings.append(_stale(kpi, observed, as_of))
            status = STALE
        if scored:
            weights.append(weight)
        if raw is None:
            components.append(Component(name, None, None, weight, 0.0, 0.0, None, MISSING))
        elif scale is None:
            components.append(Component(name, raw, None, weight, 0.0, 0.0, observed, status, rate(raw, None)))
        else:  # Scale.normalize, its terms worked out once; min(100, max(0, x)) spelt out, the same float
            normalized = (raw - low) / span * 100.0
            normalized = normalized if normalized > 0.0 else 0.0
            normalized = normalized if normalized < 100.0 else 100.0
            components.append(
                Component(name, raw, normalized, weight, 0.0, 0.0, observed, status, rate(raw, normalized))
            )
    return _combine(model, plan, components, sum(weights), any_missing, findings)


def _reading_input(kpi: Kpi, readings: list[Reading], findings: list[Finding]) -> tuple[float, datetime]:
    """The value and time of the newest of a KPI's readings (two or more); readings tied at that time with
    different values are a duplicate finding, and the one from the source sorting last is used."""
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
    return chosen.value, newest


def _survey_input(
    model: ScoringModel, kpi: Kpi, kinds: dict[str, list[SurveyResponse]], as_of: datetime
) -> tuple[float | None, datetime | None]:
    """A survey KPI's value over the responses of its kind in its window, and the newest response's time;
    (None, None) without a response in the window."""
    assert kpi.window is not None and kpi.from_surveys is not None  # parse_model fills in every survey KPI's window
    responses = kinds.get(kpi.from_surveys)
    if not responses:
        return None, None
    start = as_of - kpi.window
    window = []
    newest: datetime | None = None  # the newest response's time (the first of equal ones)
    for response in responses:  # one pass: scoring runs this for every account and survey KPI
        responded_at = response.responded_at
        if start <= responded_at:
            window.append(response)
            if newest is None or responded_at > newest:
                newest = responded_at
    if newest is None:
        return None, None
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
    return value, newest


def _what(kpi: Kpi) -> str:
    """What a KPI without a value lacks (a formula KPI says so itself)."""
    return f"no {kpi.from_surveys} survey response in the last {_days(kpi)}" if kpi.from_surveys else "no reading"


def _stale(kpi: Kpi, observed_at: datetime, as_of: datetime) -> Finding:
    assert kpi.max_age is not None
    return Finding(
        STALE,
        kpi.name,
        f"newest input from {observed_at.isoformat()} is {_age(as_of - observed_at)} old "
        f"(max_age {duration_text(kpi.max_age)}); value still used",
    )


def _days(kpi: Kpi) -> str:
    return duration_text(kpi.window) if kpi.window is not None else "window"


def _age(age: timedelta) -> str:
    return f"{age.days}d" if age.days >= 1 else f"{int(age.total_seconds() // 3600)}h"


def _combine(
    model: ScoringModel,
    plan: _Plan,
    components: list[Component],
    present_weight: float,
    any_missing: bool,
    findings: list[Finding],
) -> ScoreResult:
    """The components' effective weights and contributions, the groups' subscores, the score and its bucket."""
    contributions = []  # in model order, a missing KPI's 0.0 included: summed as before, the same float
    for component, effective in zip(components, plan.effective_weights(present_weight), strict=True):
        if component.observed_at is not None:  # a KPI with a value (a missing one keeps 0 and 0)
            component.effective_weight = effective
            normalized = component.normalized
            if normalized is not None:
                component.contribution = normalized * effective / 100.0
        contributions.append(component.contribution)
    groups = _subscores(model, plan, components) if plan.groups else {}
    if present_weight == 0 or (any_missing and plan.fail):
        return _result(None, None, components, findings, True, model.version, groups)
    score = round(min(100.0, max(0.0, sum(contributions))), 2)
    return _result(score, model.bucket_for(score).name, components, findings, bool(findings), model.version,
                   groups)  # fmt: skip


_new = object.__new__


def _result(
    score: float | None,
    bucket: str | None,
    components: list[Component],
    findings: list[Finding],
    provisional: bool,
    model_version: str,
    groups: dict[str, float | None],
) -> ScoreResult:
    """`ScoreResult(...)` with every field given, its attributes set at once: a frozen dataclass's __init__
    sets each field through object.__setattr__, 3.5 us of scoring's ~25 us per account."""
    result = _new(ScoreResult)
    result.__dict__.update(score=score, bucket=bucket, components=components, findings=findings,
                           provisional=provisional, model_version=model_version, groups=groups)  # fmt: skip
    return result


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
