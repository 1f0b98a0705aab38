"""Scoring one account: formulas, scales, policies, findings and why a score moved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulsecheck.scoring.compute import (
    Component,
    Reading,
    ScoreResult,
    SurveyResponse,
    contribution_changes,
    score_account,
)
from pulsecheck.scoring.model import Bucket, Kpi, Scale, ScoringModel
from pulsecheck.scoring.schema import parse_model

AS_OF = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)

MODEL_TEXT = """\
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


def model(policy: str = "renormalize") -> ScoringModel:
    return parse_model(MODEL_TEXT.replace("renormalize", policy), "scoring.yaml")


def readings(**overrides: float | None) -> list[Reading]:
    values: dict[str, float | None] = {"usage": 70, "open_tickets": 5, "on_time_delivery": 90} | overrides
    return [Reading(k, v, AS_OF - 2 * DAY, "crm") for k, v in values.items() if v is not None]


def surveys() -> list[SurveyResponse]:
    nps_scores = [10, 9, 8, 7, 6, 0]  # NPS 0 -> normalized 50
    csat_scores = [4, 5, 3]  # 12 / 15 -> CSAT 80
    return [SurveyResponse("nps", s, 10, AS_OF - 10 * DAY) for s in nps_scores] + [
        SurveyResponse("csat", s, 5, AS_OF - 20 * DAY) for s in csat_scores
    ]


def by_kpi(result: ScoreResult) -> dict[str, Component]:
    return {c.kpi: c for c in result.components}


def test_all_inputs_present() -> None:
    result = score_account(model(), readings(), surveys(), AS_OF)
    # 70*.30 + 50*.20 + 80*.20 + 75*.15 + 90*.15 = 21 + 10 + 16 + 11.25 + 13.5
    assert result.score == 71.75
    assert result.bucket == "neutral"
    assert not result.provisional and result.findings == []
    assert result.model_version == "2026.11"
    parts = by_kpi(result)
    assert (parts["nps"].raw, parts["nps"].normalized, parts["nps"].contribution) == (0.0, 50.0, 10.0)
    assert (parts["csat"].raw, parts["csat"].contribution) == (pytest.approx(80.0), pytest.approx(16.0))
    assert parts["nps"].observed_at == AS_OF - 10 * DAY
    assert {c.status for c in result.components} == {"ok"}


@pytest.mark.parametrize(
    ("tickets", "normalized"),
    [(0, 100.0), (5, 75.0), (10, 50.0), (20, 0.0), (35, 0.0)],
)
def test_inverted_scale_fewer_tickets_is_better(tickets: float, normalized: float) -> None:
    parts = by_kpi(score_account(model(), readings(open_tickets=tickets), surveys(), AS_OF))
    assert parts["open_tickets"].normalized == normalized


def test_values_beyond_the_scale_are_clamped() -> None:
    result = score_account(model(), readings(usage=140, on_time_delivery=-5), surveys(), AS_OF)
    assert by_kpi(result)["usage"].normalized == 100.0
    assert by_kpi(result)["on_time_delivery"].normalized == 0.0


def test_missing_input_renormalize_rescales_present_weights() -> None:
    result = score_account(model("renormalize"), readings(on_time_delivery=None), surveys(), AS_OF)
    # (70*30 + 50*20 + 80*20 + 75*15) / 85
    assert result.score == 68.53
    assert result.provisional
    parts = by_kpi(result)
    assert parts["usage"].effective_weight == pytest.approx(30 * 100 / 85)
    assert sum(c.effective_weight for c in result.components) == pytest.approx(100)
    assert (parts["on_time_delivery"].status, parts["on_time_delivery"].contribution) == ("missing", 0.0)
    assert [(f.kind, f.kpi) for f in result.findings] == [("missing", "on_time_delivery")]
    assert result.findings[0].detail == "no reading as of 2026-11-30T12:00:00+00:00"


def test_missing_input_zero_contributes_nothing() -> None:
    result = score_account(model("zero"), readings(on_time_delivery=None), surveys(), AS_OF)
    assert result.score == 58.25  # 71.75 - 13.5
    assert result.bucket == "neutral"
    assert result.provisional


def test_missing_input_fail_gives_no_score() -> None:
    result = score_account(model("fail"), readings(on_time_delivery=None), surveys(), AS_OF)
    assert (result.score, result.bucket, result.provisional) == (None, None, True)
    assert by_kpi(result)["usage"].contribution == 21.0  # still explains the parts that were there
    assert score_account(model("fail"), readings(), surveys(), AS_OF).score == 71.75


def test_survey_kpi_without_responses_in_window_is_missing() -> None:
    old = [SurveyResponse("nps", 10, 10, AS_OF - 91 * DAY)] + surveys()[6:]
    result = score_account(model(), readings(), old, AS_OF)
    assert by_kpi(result)["nps"].status == "missing"
    assert (
        result.findings[0].detail == "no nps survey response in the last 90d as of 2026-11-30T12:00:00+00:00"
    )
    # (21 + 16 + 11.25 + 13.5) / 80 * 100
    assert result.score == 77.19


def test_nothing_known_gives_no_score() -> None:
    result = score_account(model(), [], [], AS_OF)
    assert (result.score, result.bucket, result.provisional) == (None, None, True)
    assert sorted(f.kpi for f in result.findings) == [
        "csat",
        "nps",
        "on_time_delivery",
        "open_tickets",
        "usage",
    ]


def test_stale_reading_is_used_but_flagged() -> None:
    stale = [r for r in readings() if r.kpi != "usage"] + [Reading("usage", 70, AS_OF - 10 * DAY, "crm")]
    result = score_account(model(), stale, surveys(), AS_OF)
    assert result.score == 71.75
    assert result.provisional
    assert by_kpi(result)["usage"].status == "stale"
    assert [(f.kind, f.kpi) for f in result.findings] == [("stale", "usage")]
    assert "is 10d old (max_age 7d); value still used" in result.findings[0].detail


def test_exactly_max_age_old_is_not_stale() -> None:
    edge = [r for r in readings() if r.kpi != "usage"] + [Reading("usage", 70, AS_OF - 7 * DAY, "crm")]
    assert by_kpi(score_account(model(), edge, surveys(), AS_OF))["usage"].status == "ok"


def test_latest_reading_wins_and_future_readings_are_ignored() -> None:
    history = [
        Reading("usage", 10, AS_OF - 5 * DAY, "crm"),
        Reading("usage", 70, AS_OF - 1 * DAY, "crm"),
        Reading("usage", 0, AS_OF + 1 * DAY, "crm"),  # not known yet at as_of
    ]
    others = [r for r in readings() if r.kpi != "usage"]
    result = score_account(model(), history + others, surveys(), AS_OF)
    assert by_kpi(result)["usage"].raw == 70
    assert result.score == 71.75


def test_disagreeing_readings_at_the_same_time_are_duplicates() -> None:
    at = AS_OF - 2 * DAY
    dupes = [Reading("open_tickets", 5, at, "crm"), Reading("open_tickets", 8, at, "zendesk")]
    others = [r for r in readings() if r.kpi != "open_tickets"]
    result = score_account(model(), dupes + others, surveys(), AS_OF)
    assert by_kpi(result)["open_tickets"].raw == 8  # source sorting last alphabetically wins
    assert result.score == 69.5  # 71.75 - 11.25 + 9
    assert result.provisional
    [finding] = result.findings
    assert (finding.kind, finding.kpi) == ("duplicate", "open_tickets")
    assert finding.detail.endswith("disagree (5 from crm, 8 from zendesk); using 8 from zendesk")
    reversed_order = score_account(model(), list(reversed(dupes)) + others, surveys(), AS_OF)
    assert reversed_order == result


def test_agreeing_readings_at_the_same_time_are_not_duplicates() -> None:
    at = AS_OF - 2 * DAY
    same = [Reading("open_tickets", 5, at, "crm"), Reading("open_tickets", 5, at, "zendesk")]
    others = [r for r in readings() if r.kpi != "open_tickets"]
    assert score_account(model(), same + others, surveys(), AS_OF).findings == []


def test_contribution_changes_explain_a_drop_most_negative_first() -> None:
    before = score_account(model(), readings(), surveys(), AS_OF)
    after = score_account(
        model(), readings(usage=40, open_tickets=15, on_time_delivery=100), surveys(), AS_OF
    )
    assert after.score == 56.75  # 71.75 - 9 - 7.5 + 1.5
    assert contribution_changes(before.components, after.components) == [
        ("usage", -9.0),
        ("open_tickets", -7.5),
        ("csat", 0.0),
        ("nps", 0.0),
        ("on_time_delivery", 1.5),
    ]
    gone = [c for c in after.components if c.kpi != "nps"]
    assert contribution_changes(before.components, gone)[0] == ("nps", -10.0)  # absent now counts as 0


# --- properties ----------------------------------------------------------------------------------------

POLICIES = st.sampled_from(["renormalize", "zero", "fail"])
BOUNDS = st.tuples(st.integers(-100, 100), st.integers(-100, 100)).filter(lambda b: b[0] != b[1])


@st.composite
def models(draw: st.DrawFn) -> ScoringModel:
    count = draw(st.integers(1, 6))
    weights = draw(st.lists(st.integers(1, 50), min_size=count, max_size=count))
    scales = draw(st.lists(BOUNDS, min_size=count, max_size=count))
    kpis = tuple(Kpi(f"k{i}", w * 100 / sum(weights), Scale(*scales[i])) for i, w in enumerate(weights))
    buckets = (Bucket("low", 50.0, "red"), Bucket("high", None, "green"))
    return ScoringModel("p", kpis, buckets, draw(POLICIES))


def raw_for(kpi: Kpi, normalized: float) -> float:
    return kpi.scale.min + (kpi.scale.max - kpi.scale.min) * normalized / 100


@given(model=models(), data=st.data())
def test_score_is_always_between_0_and_100(model: ScoringModel, data: st.DataObject) -> None:
    values = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False))
    chosen = [(k, data.draw(values)) for k in model.kpis]
    inputs = [Reading(k.name, v, AS_OF - DAY, "s") for k, v in chosen if v is not None]
    result = score_account(model, inputs, [], AS_OF)
    if result.score is None:
        assert result.bucket is None
    else:
        assert 0 <= result.score <= 100
        assert result.bucket == ("low" if result.score < 50 else "high")


@given(model=models(), data=st.data())
def test_score_never_falls_when_one_kpi_improves(model: ScoringModel, data: st.DataObject) -> None:
    percent = st.floats(0, 100, allow_nan=False)
    normalized = [data.draw(percent) for _ in model.kpis]
    which = data.draw(st.integers(0, len(model.kpis) - 1))
    better = list(normalized)
    better[which] = data.draw(st.floats(normalized[which], 100, allow_nan=False))

    def score(values: list[float]) -> float | None:
        inputs = [
            Reading(k.name, raw_for(k, v), AS_OF - DAY, "s") for k, v in zip(model.kpis, values, strict=True)
        ]
        return score_account(model, inputs, [], AS_OF).score

    low, high = score(normalized), score(better)
    assert low is not None and high is not None
    assert high >= low


def test_a_result_is_a_frozen_score_result_equal_to_one_built_from_its_fields() -> None:
    """score_account sets a result's fields at once (not through the dataclass's __init__): the result is still a
    ScoreResult like any other, equal to one built from the same fields, and cannot be changed."""
    import dataclasses

    model = parse_model(MODEL_TEXT, "m.yaml")
    result = score_account(model, [Reading("usage", 55.0, AS_OF - DAY, "crm")], [], AS_OF)
    assert type(result) is ScoreResult
    fields = {field.name: getattr(result, field.name) for field in dataclasses.fields(ScoreResult)}
    assert result == ScoreResult(**fields)
    assert fields["score"] == 55.0 and fields["bucket"] == "neutral" and fields["provisional"] is True
    assert fields["model_version"] == "2026.11" and fields["groups"] == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.score = 1.0  # type: ignore[misc]
