"""Derived KPIs (npv, ltv, tenure_months, arr_growth_pct), group subscores, ratings and tracked KPIs, each
checked against numbers worked out by hand in the comments."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pulsecheck.scoring import formulas
from pulsecheck.scoring.compute import Reading, ScoreResult, score_account
from pulsecheck.scoring.formulas import Financials, FormulaInputs, derive
from pulsecheck.scoring.schema import parse_model

AS_OF = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
FLOWS = ((0, -1000.0), (1, 500.0), (2, 500.0), (3, 500.0))


@pytest.mark.parametrize(
    ("flows", "rate", "expected"),
    [
        # -1000 + 500/1.1 + 500/1.21 + 500/1.331 = -1000 + 454.5454545 + 413.2231405 + 375.6574005
        (FLOWS, 0.1, 243.4259955),
        (FLOWS, 0.0, 500.0),  # undiscounted: the plain sum
        (((2, 121.0),), 0.1, 100.0),  # 121 / 1.1^2 = 121 / 1.21
        (((0, 100.0),), 0.5, 100.0),  # period 0 is not discounted
        (((1, 100.0), (1, 10.0)), 0.1, 100.0),  # two flows of one period add up: 110 / 1.1
        ((), 0.1, 0.0),
    ],
)
def test_npv_against_hand_computation(flows: tuple[tuple[int, float], ...], rate: float, expected: float) -> None:
    assert formulas.npv(flows, rate) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("arpu", "cost", "tenure", "cac", "expected"),
    [
        (1000, 300, 24, 5000, 11800),  # (1000 - 300) x 24 - 5000 = 16800 - 5000
        (500, 500, 36, 2000, -2000),  # no margin: only the acquisition cost remains
        (250.5, 50.5, 12, 0, 2400),  # 200 x 12
    ],
)
def test_ltv_against_hand_computation(arpu: float, cost: float, tenure: float, cac: float, expected: float) -> None:
    assert formulas.ltv(arpu, cost, tenure, cac) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        (date(2025, 1, 15), date(2026, 3, 15), 14),  # 12 + 2
        (date(2025, 1, 15), date(2026, 3, 14), 13),  # the 14th month is not complete yet
        (date(2026, 1, 31), date(2026, 2, 28), 0),
        (date(2026, 5, 1), date(2026, 4, 1), 0),  # a start in the future is no tenure yet
        (date(2024, 11, 24), date(2026, 11, 24), 24),
    ],
)
def test_tenure_in_completed_calendar_months(start: date, end: date, months: int) -> None:
    assert formulas.months_between(start, end) == months


def test_arr_growth_pct() -> None:
    assert formulas.arr_growth_pct(100_000, 120_000) == pytest.approx(20.0)  # 20000 / 100000
    assert formulas.arr_growth_pct(80_000, 60_000) == pytest.approx(-25.0)  # -20000 / 80000
    assert formulas.arr_growth_pct(0, 10) is None


FIN = Financials(arpu=1000, cac=5000, cost_to_serve=300)


@pytest.mark.parametrize(
    ("formula", "inputs", "model_rate", "expected"),
    [
        ("npv", FormulaInputs(cashflows=FLOWS), 0.1, (pytest.approx(243.4259955), "")),
        # the account's own rate wins over the model's: 0 -> the plain sum 500
        ("npv", FormulaInputs(cashflows=FLOWS, financials=Financials(1, 1, 1, None, 0.0)), 0.1, (500.0, "")),
        ("npv", FormulaInputs(), 0.1, (None, "no cash flows")),
        (
            "npv",
            FormulaInputs(cashflows=FLOWS),
            None,
            (None, "no discount rate (the model's discount_rate or the account's financials)"),
        ),  # fmt: skip
        # tenure from contract_start: 2024-11-24 -> 2026-11-24 is 24 months: 700 x 24 - 5000
        ("ltv", FormulaInputs(financials=FIN, contract_start=date(2024, 11, 24)), None, (11800.0, "")),
        # the expected tenure, when given, wins: 700 x 10 - 5000
        ("ltv", FormulaInputs(financials=Financials(1000, 5000, 300, 10)), None, (2000.0, "")),
        ("ltv", FormulaInputs(contract_start=date(2024, 1, 1)), None, (None, "no account financials")),
        ("ltv", FormulaInputs(financials=FIN), None, (None, "no expected_tenure_months and no contract_start")),
        ("tenure_months", FormulaInputs(contract_start=date(2025, 11, 25)), None, (11.0, "")),
        ("tenure_months", FormulaInputs(), None, (None, "no contract_start")),
        ("arr_growth_pct", FormulaInputs(arr_now=120.0, arr_then=100.0), None, (pytest.approx(20.0), "")),
        ("arr_growth_pct", FormulaInputs(arr_now=120.0), None, (None, "no arr reading a window earlier")),
        ("arr_growth_pct", FormulaInputs(arr_then=1.0), None, (None, "no arr reading at as_of")),
    ],
)
def test_derive_gives_a_value_or_what_is_missing(
    formula: str, inputs: FormulaInputs, model_rate: float | None, expected: tuple[object, str]
) -> None:
    assert derive(formula, inputs, model_rate, AS_OF.date()) == expected


GROUPED = """\
version: "2027.01"
groups:
  - {name: value, label: "Customer value", groups: [adoption]}
  - {name: health}
kpis:
  - {name: usage, group: adoption, weight: 40, scale: {min: 0, max: 100}}
  - {name: open_tickets, group: health, weight: 40, scale: {min: 20, max: 0}}
  - {name: npv, group: value, weight: 20, formula: npv, scale: {min: 0, max: 1000}}
  - {name: logins, weight: 0}
buckets:
  - {name: low, below: 50, color: orange}
  - {name: ok, color: green}
discount_rate: 0.1
missing_inputs: renormalize
"""


def scored(policy: str = "renormalize", **values: float) -> ScoreResult:
    model = parse_model(GROUPED.replace("renormalize", policy), "m.yaml")
    found = [Reading(kpi, value, AS_OF) for kpi, value in values.items()]
    return score_account(model, found, [], AS_OF, FormulaInputs(cashflows=FLOWS))


def test_group_subscores_ratings_and_the_score_by_hand() -> None:
    result = scored(usage=30, open_tickets=2, logins=120)
    parts = {c.kpi: c for c in result.components}
    # normalized: usage 30; open_tickets (2 - 20) / (0 - 20) x 100 = 90; npv 243.4259955 / 1000 x 100 = 24.34...
    # score = 30 x 0.4 + 90 x 0.4 + 24.34259955 x 0.2 = 12 + 36 + 4.86851991 = 52.87
    assert result.score == 52.87 and result.bucket == "ok"
    # subscores: adoption = usage = 30; value = (40 x 30 + 20 x 24.34259955) / 60 = (1200 + 486.851991) / 60
    assert result.groups == {"value": 28.11, "health": 90.0, "adoption": 30.0}
    assert {k: c.rating for k, c in parts.items()} == {
        "usage": "concern",  # normalized 30 < 40
        "open_tickets": "strength",  # normalized 90 >= 80
        "npv": "concern",  # normalized 24.3 < 40
        "logins": "neutral",  # tracked, no scale, no thresholds
    }
    assert (parts["logins"].raw, parts["logins"].weight, parts["logins"].contribution) == (120, 0, 0)
    assert parts["npv"].raw == pytest.approx(243.4259955)
    assert result.findings == []


def test_missing_inputs_follow_the_policy_in_subscores_too() -> None:
    # open_tickets missing: renormalize leaves it out (score over usage and npv only: (1200 + 486.85) / 60)
    renormalized = scored(usage=30)
    assert renormalized.score == 28.11 and renormalized.groups["health"] is None
    assert [(f.kind, f.kpi) for f in renormalized.findings] == [("missing", "open_tickets")]
    # zero: the missing KPI counts 0 in the score; the adoption subscore is unaffected
    zeroed = scored("zero", usage=30)
    assert zeroed.score == 16.87  # 12 + 0 + 4.87
    assert zeroed.groups == {"value": 28.11, "health": None, "adoption": 30.0}
    failed = scored("fail", usage=30)
    assert failed.score is None and failed.groups["value"] == 28.11 and failed.groups["health"] is None


def test_a_formula_without_inputs_is_a_missing_finding_not_a_crash() -> None:
    model = parse_model(GROUPED, "m.yaml")
    result = score_account(model, [Reading("usage", 50, AS_OF), Reading("open_tickets", 10, AS_OF)], [], AS_OF)
    npv = next(c for c in result.components if c.kpi == "npv")
    assert (npv.status, npv.raw, npv.rating) == ("missing", None, None)
    assert [f.detail for f in result.findings] == [f"npv: no cash flows as of {AS_OF.isoformat()}"]
    assert result.provisional
    # renormalized over usage (50) and open_tickets (50): 50
    assert result.score == 50.0 and result.groups["value"] == 50.0


def test_a_tracked_kpi_without_a_value_is_no_finding() -> None:
    result = scored(usage=30, open_tickets=2)
    logins = next(c for c in result.components if c.kpi == "logins")
    assert (logins.status, logins.rating) == ("missing", None)
    assert result.findings == [] and result.score == 52.87
