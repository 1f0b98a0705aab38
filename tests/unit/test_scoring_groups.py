"""The scorecard parts of a scoring model: groups tree, tracked KPIs, concern/strength thresholds, formulas,
status colours and the discount rate; every bad one a `file:line:` problem with a suggestion."""

from __future__ import annotations

import pytest

from pulsecheck.errors import ValidationFailed
from pulsecheck.scoring.model import Threshold
from pulsecheck.scoring.schema import parse_model

GROUPED = """\
version: "2027.01"
groups:
  - {name: customer_value, label: "Customer success", groups: [business_value, experience_value, performance_value]}
  - {name: internal_success, label: "Internal business success"}
kpis:
  - {name: npv, group: business_value, weight: 20, formula: npv, scale: {min: 0, max: 100000}}
  - {name: nps, group: experience_value, weight: 25, from_surveys: nps, concern: {below: 0}, strength: {at_least: 30}}
  - {name: on_time_delivery, group: performance_value, weight: 25, scale: {min: 0, max: 100}, concern: {below: 80}}
  - {name: ltv, group: internal_success, weight: 30, formula: ltv, scale: {min: 0, max: 500000}}
  - {name: logins, weight: 0}
buckets:
  - {name: unhealthy, below: 40, color: orange}
  - {name: healthy, color: green}
discount_rate: 0.1
"""
FLAT = (
    "version: '1'\nkpis:\n  - {{name: usage, weight: 100, {extra}scale: {{min: 0, max: 100}}}}\n"
    "buckets:\n  - {{name: a, color: red}}\n"
)


def problems_of(text: str) -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        parse_model(text, "m.yaml")
    return info.value.problems


def test_grouped_model_parses_with_implicit_leaf_groups_and_group_weights() -> None:
    model = parse_model(GROUPED, "m.yaml")
    assert [(g.name, g.label) for g in model.groups] == [
        ("customer_value", "Customer success"),
        ("internal_success", "Internal business success"),
        ("business_value", "business_value"),
        ("experience_value", "experience_value"),
        ("performance_value", "performance_value"),
    ]
    # a group weighs what its KPIs weigh, its descendants' included: 20 + 25 + 25
    assert model.group_weight("customer_value") == 70
    assert model.group_weight("internal_success") == 30
    assert model.group_weight("experience_value") == 25
    assert model.kpi("logins").scored is False and model.kpi("logins").scale is None
    assert model.kpi("nps").concern == Threshold("below", 0) and model.kpi("nps").strength == Threshold("at_least", 30)
    assert model.kpi("npv").formula == "npv" and model.discount_rate == 0.1
    assert model.statuses == {"concern": "orange", "strength": "green"}


def test_a_kpi_may_be_listed_by_its_group_instead() -> None:
    text = GROUPED.replace('label: "Internal business success"}', 'label: "Internal", kpis: [ltv]}').replace(
        "{name: ltv, group: internal_success,", "{name: ltv,"
    )
    assert parse_model(text, "m.yaml").kpi("ltv").group == "internal_success"


@pytest.mark.parametrize(
    ("raw", "rating"),
    [(-10, "concern"), (0, "neutral"), (29.9, "neutral"), (30, "strength"), (None, None)],
)
def test_rating_follows_the_kpis_own_thresholds_in_raw_units(raw: float | None, rating: str | None) -> None:
    assert parse_model(GROUPED, "m.yaml").kpi("nps").rating(raw) == rating


@pytest.mark.parametrize(
    ("raw", "rating"),
    # on_time_delivery: concern below 80 given, strength by default from normalized 80 (raw 80 on 0..100)
    [(79, "concern"), (80, "strength"), (100, "strength")],
)
def test_a_threshold_not_given_defaults_on_the_normalized_value(raw: float, rating: str) -> None:
    assert parse_model(GROUPED, "m.yaml").kpi("on_time_delivery").rating(raw) == rating


def test_default_thresholds_are_normalized_40_and_80_also_on_inverted_scales() -> None:
    model = parse_model(
        "version: '1'\nkpis:\n  - {name: open_tickets, weight: 100, scale: {min: 20, max: 0}}\n"
        "buckets:\n  - {name: all, color: blue}\n",
        "m.yaml",
    )
    kpi = model.kpi("open_tickets")
    # normalized = (raw - 20) / (0 - 20) x 100: raw 13 -> 35 (concern), 12 -> 40, 4 -> 80 (strength)
    assert [kpi.rating(r) for r in (13, 12, 5, 4)] == ["concern", "neutral", "neutral", "strength"]


def test_status_colours_come_from_the_model() -> None:
    model = parse_model(GROUPED + 'statuses: {concern: "#ff8800", strength: teal}\n', "m.yaml")
    assert model.status_color("concern") == "#ff8800"
    assert model.status_color("strength") == "teal"
    assert model.status_color("neutral") is None


def test_flat_models_keep_their_canonical_form() -> None:
    flat = FLAT.format(extra="")
    canonical = parse_model(flat, "m.yaml").canonical()
    assert set(canonical) == {"version", "missing_inputs", "ces", "kpis", "buckets"}
    assert set(canonical["kpis"][0]) == {"name", "weight", "scale", "max_age", "from_surveys", "window", "ces"}


def test_grouped_canonical_form_changes_with_groups_and_thresholds() -> None:
    model = parse_model(GROUPED, "m.yaml")
    moved = parse_model(GROUPED.replace("concern: {below: 80}", "concern: {below: 70}"), "m.yaml")
    assert model.digest() != moved.digest()
    assert model.canonical()["groups"][0] == {
        "name": "business_value",
        "label": "business_value",
        "groups": [],
    }


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "group: business_value,",
            "group: bussiness_value,",
            "m.yaml:6: kpi 'npv': unknown group 'bussiness_value' (did you mean 'business_value'?)",
        ),
        (
            "formula: ltv,",
            "formula: lvt,",
            "m.yaml:9: kpi 'ltv': unknown formula 'lvt' (did you mean 'ltv'?); "
            "expected npv, ltv, tenure_months or arr_growth_pct",
        ),
        (
            'label: "Internal business success"}',
            'label: "Internal business success", kpis: [npv]}',
            "m.yaml:6: kpi 'npv' is in two groups: 'internal_success' (line 4) and 'business_value'",
        ),
        (
            "{name: ltv, group: internal_success,",
            "{name: ltv, group: [internal_success, business_value],",
            "m.yaml:9: kpi 'ltv' is in 2 groups: a KPI is in one group",
        ),
        (
            "concern: {below: 0}",
            "concern: {below: 150}",
            "m.yaml:7: kpi 'nps': concern below 150 is outside the KPI's scale -100..100",
        ),
        (
            "strength: {at_least: 30}",
            "strength: {at_least: -101}",
            "m.yaml:7: kpi 'nps': strength at_least -101 is outside the KPI's scale -100..100",
        ),
        (
            "concern: {below: 0}",
            "concern: {belw: 0}",
            "m.yaml:7: kpi 'nps': concern: unknown key 'belw' (did you mean 'below'?); expected below or above",
        ),
        (
            "strength: {at_least: 30}",
            "strength: {at_least: -30}",
            "m.yaml:7: kpi 'nps': strength at_least -30 is below concern below 0",
        ),
        (
            "{name: ltv, group: internal_success,",
            "{name: ltv,",
            "m.yaml:4: group 'internal_success' has no KPI (give a scored KPI `group: internal_success`)\n"
            "m.yaml:9: kpi 'ltv' is in no group (with groups, every scored KPI is in one)",
        ),
        (
            'label: "Internal business success"}',
            'label: "Internal business success", groups: [customer_value]}\n'
            "  - {name: business_value, groups: [internal_success]}",
            "m.yaml:3: groups form a cycle: internal_success -> customer_value -> business_value -> internal_success",
        ),
        (
            'label: "Internal business success"}',
            'label: "Internal business success", groups: [experience_value]}',
            "m.yaml:4: group 'experience_value' has two parents: 'customer_value' (line 3) and 'internal_success'",
        ),
        (
            "discount_rate: 0.1",
            "discount_rate: 8",
            "m.yaml:14: discount_rate must be a fraction in [0, 1] (like 0.08), got 8",
        ),
        (
            "discount_rate: 0.1",
            "statuses: {concern: 'url(x)'}",
            "m.yaml:14: statuses: concern colour 'url(x)' must be #rrggbb, #rgb or a CSS colour name",
        ),
        (
            "formula: ltv,",
            "formula: arr_growth_pct,",
            "m.yaml:9: kpi 'ltv': formula arr_growth_pct needs a window (like window: 365d)",
        ),
        (
            "{name: logins, weight: 0}",
            "{name: logins, weight: 0, group: engagment}",
            "m.yaml:10: kpi 'logins': unknown group 'engagment'",
        ),
    ],
)
def test_bad_scorecard_models_say_where_and_what(old: str, new: str, expected: str) -> None:
    assert old in GROUPED
    assert problems_of(GROUPED.replace(old, new)) == expected.split("\n")


def test_weights_of_scored_kpis_still_sum_to_100_and_tracked_ones_need_no_scale() -> None:
    text = GROUPED.replace("weight: 30, formula: ltv", "weight: 20, formula: ltv")
    assert problems_of(text) == ["m.yaml:5: kpi weights sum to 90, expected 100"]
    scored_without_scale = GROUPED.replace(
        "{name: logins, weight: 0}", "{name: logins, weight: 0}\n  - {name: x, weight: 0.0}"
    )
    assert parse_model(scored_without_scale, "m.yaml").kpi("x").scored is False


def test_groups_without_a_groups_key_are_refused_on_the_kpi() -> None:
    flat = FLAT.format(extra="group: g, ")
    assert problems_of(flat) == ["m.yaml:3: kpi 'usage': group 'g', but the model has no groups"]
