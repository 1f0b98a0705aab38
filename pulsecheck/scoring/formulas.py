"""KPI formulas (DESIGN.md section 7): the survey KPIs CSAT, NPS and CES, each on a 0..100 or -100..100 scale,
and the derived KPIs npv, ltv, tenure_months and arr_growth_pct. All pure: no database, no clock, no eval.

Every survey formula returns None for no responses, and raises ValueError for a response that cannot be
right (a score outside 0..max_score, a max_score of zero or less), since that is bad data to fix upstream.
A derived KPI whose inputs are missing is None with the reason (`derive`), never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import NamedTuple

PROMOTER_AT = 9  # NPS: 9-10 promote
DETRACTOR_AT = 6  # NPS: 0-6 detract, 7-8 are passive
NPS_MAX = 10


def _checked(responses: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    checked = []
    for score, max_score in responses:
        if max_score <= 0:
            raise ValueError(f"survey max_score must be positive, got {max_score}")
        if not 0 <= score <= max_score:
            raise ValueError(f"survey score {score} is outside 0..{max_score}")
        checked.append((float(score), float(max_score)))
    return checked


def csat(responses: Iterable[tuple[float, float]]) -> float | None:
    """CSAT 0..100 over `(score, max_score)` pairs: sum of scores / sum of max scores x 100."""
    pairs = _checked(responses)
    if not pairs:
        return None
    return sum([score for score, _ in pairs]) / sum([top for _, top in pairs]) * 100.0


def nps(scores: Iterable[float]) -> float | None:
    """NPS -100..100 over 0..10 scores: % promoters (9-10) minus % detractors (0-6)."""
    count = promoters = detractors = 0
    for score in scores:  # one pass: scoring computes this for every account
        if not 0 <= score <= NPS_MAX:
            raise ValueError(f"survey score {score} is outside 0..{NPS_MAX}")
        count += 1
        if score >= PROMOTER_AT:
            promoters += 1
        elif score <= DETRACTOR_AT:
            detractors += 1
    if not count:
        return None
    return (promoters - detractors) / count * 100.0


def ces(responses: Iterable[tuple[float, float]], positive_at: float = 0.7, negative_at: float = 0.45) -> float | None:
    """CES -100..100 over `(score, max_score)` pairs: % positive minus % negative, where a response is
    positive when score/max_score >= positive_at and negative when score/max_score <= negative_at."""
    pairs = _checked(responses)
    if not pairs:
        return None
    ratios = [score / top for score, top in pairs]
    positive = sum(1 for r in ratios if r >= positive_at)
    negative = sum(1 for r in ratios if r <= negative_at)
    return (positive - negative) / len(ratios) * 100.0


# --- derived KPIs (DESIGN.md section 7): npv, ltv, tenure_months, arr_growth_pct ----------------------------


class Financials(NamedTuple):  # tuples: scoring makes one of each per account, a frozen dataclass costs 4x
    """An account's unit economics: monthly ARPU and cost to serve, acquisition cost, and optional overrides
    of the expected tenure (months) and the discount rate (per period)."""

    arpu: float
    cac: float
    cost_to_serve: float
    expected_tenure_months: float | None = None
    discount_rate: float | None = None


class FormulaInputs(NamedTuple):
    """What the derived KPIs of one account are computed from; anything may be absent."""

    cashflows: tuple[tuple[int, float], ...] = ()  # (period t, net cash flow C_t)
    financials: Financials | None = None
    contract_start: date | None = None
    arr_now: float | None = None  # the newest `arr` reading at as_of
    arr_then: float | None = None  # the newest `arr` reading at as_of minus the KPI's window


def npv(cashflows: Iterable[tuple[int, float]], rate: float) -> float:
    """Net present value: the sum over periods t of C_t / (1 + rate)^t (t = 0 is undiscounted)."""
    return sum(amount / (1.0 + rate) ** period for period, amount in cashflows)


def ltv(arpu: float, cost_to_serve: float, tenure_months: float, cac: float) -> float:
    """Lifetime value: (ARPU - cost to serve per month) x expected tenure in months - CAC."""
    return (arpu - cost_to_serve) * tenure_months - cac


def months_between(start: date, end: date) -> int:
    """Completed calendar months from `start` to `end` (0 when end is before start): 15 Jan -> 14 Mar is 1."""
    months = (end.year - start.year) * 12 + end.month - start.month - (end.day < start.day)
    return max(0, months)


def arr_growth_pct(then: float, now: float) -> float | None:
    """ARR growth in percent from `then` to `now`; None when `then` is not above zero (no base to grow from)."""
    if then <= 0:
        return None
    return (now - then) / then * 100.0


def derive(formula: str, inputs: FormulaInputs, model_rate: float | None, as_of: date) -> tuple[float | None, str]:
    """A derived KPI's value, or None and why it cannot be computed (what is missing)."""
    fin = inputs.financials
    if formula == "npv":
        rate = fin.discount_rate if fin is not None and fin.discount_rate is not None else model_rate
        if not inputs.cashflows:
            return None, "no cash flows"
        if rate is None:
            return None, "no discount rate (the model's discount_rate or the account's financials)"
        return npv(inputs.cashflows, rate), ""
    if formula == "ltv":
        if fin is None:
            return None, "no account financials"
        tenure = fin.expected_tenure_months
        if tenure is None and inputs.contract_start is None:
            return None, "no expected_tenure_months and no contract_start"
        if tenure is None:
            assert inputs.contract_start is not None
            tenure = months_between(inputs.contract_start, as_of)
        return ltv(fin.arpu, fin.cost_to_serve, tenure, fin.cac), ""
    if formula == "tenure_months":
        if inputs.contract_start is None:
            return None, "no contract_start"
        return float(months_between(inputs.contract_start, as_of)), ""
    if inputs.arr_now is None or inputs.arr_then is None:
        return None, "no arr reading at as_of" if inputs.arr_now is None else "no arr reading a window earlier"
    growth = arr_growth_pct(inputs.arr_then, inputs.arr_now)
    return (growth, "") if growth is not None else (None, "arr a window earlier is not above 0")
