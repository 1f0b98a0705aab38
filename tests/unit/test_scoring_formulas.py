"""Survey formulas, hand-checked (DESIGN.md section 7)."""

from __future__ import annotations

import pytest

from pulsecheck.scoring.formulas import ces, csat, nps


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([10, 9], 100.0),  # all promoters
        ([0, 6], -100.0),  # 0 and 6 are both detractors
        ([7, 8], 0.0),  # passives only
        ([6, 7], -50.0),  # 6 detracts, 7 is passive
        ([8, 9], 50.0),  # 9 promotes, 8 is passive
        ([0, 6, 7, 9, 10], 0.0),  # 2 promoters - 2 detractors over 5
        ([10, 10, 10, 0], 50.0),  # 75% - 25%
        ([9, 7, 7], pytest.approx(100 / 3)),
    ],
)
def test_nps_boundaries(scores: list[float], expected: float) -> None:
    assert nps(scores) == expected


@pytest.mark.parametrize(
    ("responses", "expected"),
    [
        ([(5, 5)], 100.0),
        ([(4, 5), (5, 5), (3, 5)], 80.0),  # 12 / 15
        ([(1, 5), (10, 10)], pytest.approx(11 / 15 * 100)),  # sums, not an average of percentages
        ([(0, 5)], 0.0),
    ],
)
def test_csat_is_sum_of_scores_over_sum_of_max(responses: list[tuple[float, float]], expected: float) -> None:
    assert csat(responses) == expected


@pytest.mark.parametrize(
    ("responses", "expected"),
    [
        ([(7, 7), (6, 7), (5, 7)], 100.0),  # 5..7 of 7 are positive with the defaults
        ([(1, 7), (2, 7), (3, 7)], -100.0),  # 1..3 of 7 are negative
        ([(4, 7)], 0.0),  # 4 of 7 is neutral
        ([(5, 7), (4, 7), (3, 7), (7, 7)], 25.0),  # 2 positive - 1 negative over 4
        ([(4, 5), (3, 5), (2, 5)], 0.0),  # on 1..5: 4+ positive, 2- negative
        ([(7, 10), (4, 10), (5, 10)], 0.0),  # on 1..10: exactly 0.7 is positive, exactly 0.4 negative
    ],
)
def test_ces_default_thresholds(responses: list[tuple[float, float]], expected: float) -> None:
    assert ces(responses) == expected


def test_ces_thresholds_from_the_model_change_the_result() -> None:
    responses = [(5, 7), (6, 7), (3, 7), (4, 7)]
    assert ces(responses) == 25.0
    assert ces(responses, positive_at=6 / 7, negative_at=4 / 7) == -25.0  # 6+ positive, 4- negative


def test_no_responses_means_no_value() -> None:
    assert nps([]) is None
    assert csat([]) is None
    assert ces([]) is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: nps([11]), "outside 0..10"),
        (lambda: nps([-1]), "outside 0..10"),
        (lambda: csat([(6, 5)]), "outside 0..5"),
        (lambda: ces([(3, 0)]), "max_score must be positive"),
    ],
)
def test_impossible_responses_are_rejected(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
