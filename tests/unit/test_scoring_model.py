"""Scoring-model parsing, validation messages, buckets, canonical form and diffs."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulsecheck.errors import InputError, ValidationFailed
from pulsecheck.scoring.model import Bucket, CesThresholds, Group, Kpi, Scale, ScoringModel, Threshold, diff_models
from pulsecheck.scoring.schema import load_model_file, parse_model

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scoring.yaml"

BASE = """\
version: "2026.11"
kpis:
  - {name: usage, weight: 30, scale: {min: 0, max: 100}, max_age: 7d}
  - {name: nps, weight: 20, scale: {min: -100, max: 100}, from_surveys: nps, max_age: 90d}
  - {name: csat, weight: 20, from_surveys: csat, max_age: 90d}
  - {name: open_tickets, weight: 15, scale: {min: 20, max: 0}}
  - {name: on_time_delivery, weight: 15, scale: {min: 0, max: 100}}
buckets:
  - {name: unhealthy, below: 40, color: orange}
  - {name: neutral, below: 80, color: yellow}
  - {name: healthy, color: blue}
missing_inputs: renormalize
"""


def problems_of(text: str, source: str = "scoring.yaml") -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        parse_model(text, source)
    return info.value.problems


def test_example_file_is_the_design_model() -> None:
    """The sample model is DESIGN.md's, plus `logins` tracked at weight 0 (the sample rule logins-drop watches it)."""
    model = load_model_file(EXAMPLE)
    assert [k.name for k in model.kpis] == ["usage", "nps", "csat", "open_tickets", "on_time_delivery", "logins"]
    assert [k.weight for k in model.kpis if k.name == "logins"] == [0]
    assert sum(k.weight for k in model.kpis) == 100
    assert [(b.name, b.below, b.color) for b in model.buckets] == [
        ("unhealthy", 40, "orange"),
        ("neutral", 80, "yellow"),
        ("healthy", None, "blue"),
    ]
    assert model.missing_inputs == "renormalize"
    untracked = "\n".join(line for line in EXAMPLE.read_text().splitlines() if "name: logins" not in line)
    design = parse_model(untracked, "example without logins").canonical()
    assert design == parse_model(BASE, "base").canonical() | {"ces": design["ces"]}


def test_buckets_without_a_colour_get_red_amber_green_by_place() -> None:
    three = BASE.replace(", color: orange}", "}").replace(", color: yellow}", "}").replace(", color: blue}", "}")
    assert [b.color for b in parse_model(three, "m").buckets] == ["red", "#ffbf00", "green"]  # CSS has no `amber`
    four = three.replace("{name: neutral, below: 80}", "{name: neutral, below: 60}\n  - {name: fair, below: 80}")
    assert [b.color for b in parse_model(four, "m").buckets] == ["red", "#ffbf00", "#ffbf00", "green"]
    two = BASE.replace("  - {name: neutral, below: 80, color: yellow}\n", "").replace(", color: orange}", "}")
    assert [b.color for b in parse_model(two, "m").buckets] == ["red", "blue"]  # a colour the model names stays


def test_survey_kpis_get_default_scales_and_windows() -> None:
    text = BASE.replace(
        "  - {name: on_time_delivery, weight: 15, scale: {min: 0, max: 100}}",
        "  - {name: on_time_delivery, weight: 5, scale: {min: 0, max: 100}}\n"
        "  - {name: effort, weight: 10, from_surveys: ces, ces: {positive_at: 0.8}}",
    )
    model = parse_model(text, "scoring.yaml")
    assert model.kpi("csat").scale == Scale(0, 100)
    assert model.kpi("csat").window == timedelta(days=90)  # = max_age
    effort = model.kpi("effort")
    assert effort.scale == Scale(-100, 100)
    assert effort.window == timedelta(days=90)  # no max_age: 90 days
    assert model.ces_for(effort) == CesThresholds(positive_at=0.8, negative_at=0.45)
    assert model.ces_for(model.kpi("csat")) == CesThresholds()
    assert model.kpi("open_tickets").scale.inverted


@pytest.mark.parametrize(
    ("score", "bucket"),
    [
        (0, "unhealthy"),
        (39.99, "unhealthy"),
        (40, "neutral"),
        (79.99, "neutral"),
        (80, "healthy"),
        (100, "healthy"),
    ],
)
def test_bucket_for_uses_below_as_exclusive_upper_bound(score: float, bucket: str) -> None:
    assert parse_model(BASE, "s").bucket_for(score).name == bucket


def test_any_number_of_buckets() -> None:
    text = BASE.split("buckets:")[0] + (
        "buckets:\n"
        "  - {name: critical, below: 20, color: red}\n"
        "  - {name: unhealthy, below: 40, color: orange}\n"
        "  - {name: neutral, below: 60, color: yellow}\n"
        "  - {name: good, below: 85, color: green}\n"
        "  - {name: great, color: blue}\n"
    )
    model = parse_model(text, "s")
    assert [model.bucket_for(s).name for s in (5, 25, 59, 84.9, 99)] == [
        "critical",
        "unhealthy",
        "neutral",
        "good",
        "great",
    ]
    single = parse_model(BASE.split("buckets:")[0] + "buckets:\n  - {name: all, color: grey}\n", "s")
    assert single.bucket_for(0).name == "all"


def test_weights_must_sum_to_100_and_the_message_says_the_sum() -> None:
    text = BASE.replace("name: usage, weight: 30", "name: usage, weight: 25")
    assert problems_of(text) == ["scoring.yaml:2: kpi weights sum to 95, expected 100"]


def test_unknown_key_suggests_the_right_one_on_its_line() -> None:
    text = BASE.replace("- {name: usage, weight: 30,", "- {name: usage, wieght: 30,")
    assert problems_of(text) == [
        "scoring.yaml:3: kpi 'usage': unknown key 'wieght' (did you mean 'weight'?)",
        "scoring.yaml:3: kpi 'usage': missing required key 'weight'",
    ]


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    text = """\
version: 2026.11
kpis:
  - {name: usage, weight: 30, scale: {min: 0, max: 100}, max_age: 7x}
  - {name: usage, weight: -5, scale: {min: 0, max: 0}}
  - {name: nps, weight: 20, from_surveys: nsp}
  - name: effort
    weight: thirty
    from_surveys: ces
    ces: {positive_at: 0.4, negative_at: 0.5}
  - {name: tickets, weight: 15, window: 30d, scale: [0, 20]}
buckets:
  - {name: unhealthy, below: 60, color: orange}
  - {name: neutral, below: 50, colour: yellow}
  - {name: unhealthy, below: 100, color: blue}
missing_inputs: renormalise
"""
    assert problems_of(text, "models/live.yaml") == [
        'models/live.yaml:1: version must be non-empty text, got 2026.11 (quote it, like version: "2026.11", '
        "or YAML reads a number)",
        "models/live.yaml:3: kpi 'usage': max_age: expected a duration like 7d, 12h or 2w, got '7x'",
        "models/live.yaml:4: kpi 'usage': weight must be a number >= 0 (0: tracked, not scored), got -5",
        "models/live.yaml:4: kpi 'usage': scale min and max are both 0; they must differ",
        "models/live.yaml:4: duplicate kpi name 'usage' (first defined on line 3)",
        "models/live.yaml:5: kpi 'nps': unknown from_surveys kind 'nsp' (did you mean 'nps'?); "
        "expected nps, csat or ces",
        "models/live.yaml:7: kpi 'effort': weight must be a number >= 0 (0: tracked, not scored), got 'thirty'",
        "models/live.yaml:9: kpi 'effort': ces negative_at (0.5) must be below positive_at (0.4)",
        "models/live.yaml:10: kpi 'tickets': scale must be a mapping {min, max}, got [0, 20]",
        "models/live.yaml:10: kpi 'tickets': window only applies to from_surveys KPIs and arr_growth_pct",
        "models/live.yaml:13: bucket 'neutral': unknown key 'colour' (did you mean 'color'?)",
        "models/live.yaml:13: bucket 'neutral': below 50 must be greater than the previous bucket's 60 "
        "(thresholds must strictly increase)",
        "models/live.yaml:14: bucket 'unhealthy': the last bucket must not have 'below' (it is open-ended)",
        "models/live.yaml:14: duplicate bucket name 'unhealthy' (first defined on line 12)",
        "models/live.yaml:15: unknown missing_inputs policy 'renormalise' (did you mean 'renormalize'?); "
        "expected renormalize, zero or fail",
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  - {name: neutral, below: 80, color: yellow}\n",
            "  - {name: neutral, color: yellow}\n",
            "scoring.yaml:10: bucket 'neutral': needs 'below' (only the last bucket is open-ended)",
        ),
        (
            "below: 80",
            "below: 40",
            "scoring.yaml:10: bucket 'neutral': below 40 must be greater than the previous bucket's 40 "
            "(thresholds must strictly increase)",
        ),
        (
            "below: 80",
            "below: 120",
            "scoring.yaml:10: bucket 'neutral': below must be a number in (0, 100], got 120",
        ),
        (
            "{name: open_tickets, weight: 15, scale: {min: 20, max: 0}}",
            "{name: open_tickets, weight: 15}",
            "scoring.yaml:6: kpi 'open_tickets': needs a scale {min, max} (or from_surveys: nps|csat|ces)",
        ),
        (
            "scale: {min: 20, max: 0}",
            "scale: {min: 20, mx: 0}",
            "scoring.yaml:6: kpi 'open_tickets': scale: unknown key 'mx' (did you mean 'max'?)\n"
            "scoring.yaml:6: kpi 'open_tickets': scale is missing 'max'",
        ),
        (
            "name: open_tickets,",
            "name: Open Tickets,",
            "scoring.yaml:6: kpis[3]: name must be lowercase letters, digits and _ (like open_tickets), "
            "got 'Open Tickets'",
        ),
        ("max_age: 7d", "max_age: 0d", "scoring.yaml:3: kpi 'usage': max_age must be longer than zero"),
        (
            "missing_inputs: renormalize",
            "missing_inputs: ignore",
            "scoring.yaml:12: unknown missing_inputs policy 'ignore'; expected renormalize, zero or fail",
        ),
        (
            "max_age: 7d}",
            "max_age: 7d, ces: {positive_at: 0.9}}",
            "scoring.yaml:3: kpi 'usage': ces thresholds only apply to from_surveys: ces",
        ),
    ],
)
def test_single_problem_messages(old: str, new: str, expected: str) -> None:
    assert old in BASE
    assert problems_of(BASE.replace(old, new)) == expected.split("\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "s.yaml:1: expected a mapping with version, kpis and buckets"),
        ("- 1\n- 2\n", "s.yaml:1: expected a mapping with version, kpis and buckets"),
        ("version: '1'\nkpis: {}\nbuckets: []\n", "s.yaml:2: kpis must be a non-empty list"),
        (
            "version: '1'\nkpis: [\n",
            "s.yaml:3: invalid YAML: expected the node content, but found '<stream end>'",
        ),
    ],
)
def test_broken_files_say_where(text: str, expected: str) -> None:
    assert problems_of(text, "s.yaml")[0] == expected


def test_load_model_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "live.yaml"
    path.write_text(BASE.replace("weight: 30", "weight: 31"), encoding="utf-8")
    with pytest.raises(ValidationFailed) as info:
        load_model_file(path)
    assert str(info.value) == f"{path}:2: kpi weights sum to 101, expected 100"
    with pytest.raises(InputError, match=r"nope\.yaml: cannot read"):
        load_model_file(tmp_path / "nope.yaml")


def test_canonical_is_json_and_ignores_spelling_and_kpi_order() -> None:
    model = parse_model(BASE, "a")
    canonical = model.canonical()
    assert json.loads(json.dumps(canonical)) == canonical
    assert canonical["kpis"][0] == {
        "name": "csat",
        "weight": 20,
        "scale": {"min": 0, "max": 100},
        "max_age": "90d",
        "from_surveys": "csat",
        "window": "90d",
        "ces": None,
    }
    lines = BASE.splitlines(keepends=True)
    reordered = "".join(lines[:2] + lines[6:7] + lines[2:6] + lines[7:])
    respelled = reordered.replace("weight: 30", "weight: 30.0").replace("max_age: 7d", "max_age: 1w")
    respelled += "ces: {positive_at: 0.7, negative_at: 0.45}\n"
    assert parse_model(respelled, "b").digest() == model.digest()
    assert diff_models(model, parse_model(respelled, "b")) == []
    changed = BASE.replace("weight: 30", "weight: 25").replace(
        "weight: 15, scale: {min: 20", "weight: 20, scale: {min: 20"
    )
    assert parse_model(changed, "c").digest() != model.digest()


def test_diff_models_lists_every_change_in_words() -> None:
    approved = parse_model(BASE, "approved.yaml")
    live_text = """\
version: "2026.12"
kpis:
  - {name: usage, weight: 25, scale: {min: 0, max: 100}, max_age: 14d}
  - {name: nps, weight: 20, scale: {min: -50, max: 50}, from_surveys: nps, max_age: 90d}
  - {name: csat, weight: 20, from_surveys: csat, max_age: 90d, window: 30d}
  - {name: open_tickets, weight: 15, scale: {min: 30, max: 0}}
  - {name: effort, weight: 20, from_surveys: ces}
buckets:
  - {name: unhealthy, below: 45, color: red}
  - {name: healthy, color: blue}
missing_inputs: zero
ces: {positive_at: 0.8}
"""
    assert diff_models(approved, parse_model(live_text, "live.yaml")) == [
        "version 2026.11 -> 2026.12",
        "missing_inputs renormalize -> zero",
        "ces positive_at 0.7 -> 0.8",
        "kpi csat: window 90d -> 30d",
        "kpi nps: scale -100..100 -> -50..50",
        "kpi on_time_delivery: removed",
        "kpi open_tickets: scale 20..0 -> 30..0",
        "kpi usage: weight 30 -> 25",
        "kpi usage: max_age 7d -> 14d",
        "kpi effort: added (weight 20)",
        "bucket unhealthy: below 40 -> 45",
        "bucket unhealthy: color orange -> red",
        "bucket neutral: removed",
    ]
    assert diff_models(approved, approved) == []


def test_diff_models_reports_added_bucket_and_reorder() -> None:
    approved = parse_model(BASE, "a")
    text = BASE.split("buckets:")[0] + (
        "buckets:\n"
        "  - {name: critical, below: 20, color: red}\n"
        "  - {name: unhealthy, below: 40, color: orange}\n"
        "  - {name: neutral, below: 80, color: yellow}\n"
        "  - {name: healthy, color: blue}\n"
    )
    assert diff_models(approved, parse_model(text, "b")) == ["bucket critical: added (below 20)"]
    swapped = BASE.replace(
        "name: unhealthy, below: 40, color: orange", "name: neutral, below: 40, color: orange"
    )
    swapped = swapped.replace(
        "name: neutral, below: 80, color: yellow", "name: unhealthy, below: 80, color: yellow"
    )
    assert diff_models(approved, parse_model(swapped, "c")) == [
        "bucket unhealthy: below 40 -> 80",
        "bucket unhealthy: color orange -> yellow",
        "bucket neutral: below 80 -> 40",
        "bucket neutral: color yellow -> orange",
        "bucket order: unhealthy, neutral, healthy -> neutral, unhealthy, healthy",
    ]


# --- the data stored beside an approved model's text (`as_data`, `from_data`; migration 0024) ---------------------

FULL = """\
version: "full"
groups:
  - {name: value, label: Value delivered, groups: [adoption]}
  - {name: adoption, label: Adoption}
  - {name: care, label: Care}
kpis:
  - {name: usage, weight: 40, scale: {min: 0, max: 100}, max_age: 36h, group: adoption, concern: {below: 25.5}}
  - {name: ces, weight: 20, from_surveys: ces, window: 2w, group: care, ces: {positive_at: 0.8, negative_at: 0.3}}
  - {name: tickets, weight: 40, scale: {min: 20, max: 0}, group: value, strength: {at_most: 2}}
  - {name: npv, weight: 0, formula: npv}
buckets:
  - {name: risk, below: 45.5, color: "#c0392b"}
  - {name: fine, color: green}
missing_inputs: zero
ces: {positive_at: 0.75, negative_at: 0.4}
statuses: {concern: red, strength: blue}
discount_rate: 0.01
"""


@pytest.mark.parametrize("text", [BASE, FULL, EXAMPLE.read_text(encoding="utf-8")], ids=["base", "full", "example"])
def test_a_model_made_from_its_stored_data_is_the_parsed_model(text: str) -> None:
    """Through JSON, as the column holds it: every field equal, in the file's own order, and the same digest."""
    model = parse_model(text, "scoring.yaml")
    again = ScoringModel.from_data(json.loads(json.dumps(model.as_data())))
    assert again == model
    assert [k.name for k in again.kpis] == [k.name for k in model.kpis]  # the author's order, not the canonical
    assert [g.name for g in again.groups] == [g.name for g in model.groups]
    assert again.digest() == model.digest()


NAMES = st.text(min_size=1, max_size=8)
NUMBERS = st.floats(allow_nan=False, allow_infinity=False, width=64)
DURATIONS = st.none() | st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=100_000))


def pairs(kind: Any) -> st.SearchStrategy[Any]:
    return st.none() | st.builds(kind, NUMBERS, NUMBERS)


KPIS = st.builds(
    Kpi, NAMES, NUMBERS, pairs(Scale), DURATIONS, st.none() | NAMES, DURATIONS, pairs(CesThresholds),
    st.none() | NAMES, st.none() | st.builds(Threshold, st.sampled_from(["below", "above"]), NUMBERS),
    st.none() | st.builds(Threshold, st.sampled_from(["at_least", "at_most"]), NUMBERS), st.none() | NAMES,
)
MODELS = st.builds(
    ScoringModel, NAMES, st.lists(KPIS, max_size=4).map(tuple),
    st.lists(st.builds(Bucket, NAMES, st.none() | NUMBERS, NAMES), min_size=1, max_size=3).map(tuple),
    st.sampled_from(["renormalize", "zero", "fail"]), st.builds(CesThresholds, NUMBERS, NUMBERS),
    st.lists(st.builds(Group, NAMES, NAMES, st.lists(NAMES, max_size=3).map(tuple)), max_size=3).map(tuple),
    st.dictionaries(NAMES, NAMES, max_size=3), st.none() | NUMBERS,
)


@given(model=MODELS)
def test_any_model_comes_back_from_its_data(model: ScoringModel) -> None:
    assert ScoringModel.from_data(json.loads(json.dumps(model.as_data()))) == model
