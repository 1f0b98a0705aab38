"""Score trends over a fixture history of weekly snapshots."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pulsecheck.scoring.trends import (
    direction,
    low_score_streak,
    score_change,
    score_drop,
    sparkline,
    sudden_changes,
)

# Weekly snapshots: a peak of 82 on Oct 15, then a slide into the unhealthy band.
HISTORY: list[tuple[date | datetime, float | None]] = [
    (date(2026, 10, 1), 70.0),
    (date(2026, 10, 8), 74.0),
    (date(2026, 10, 15), 82.0),
    (date(2026, 10, 22), 78.0),
    (date(2026, 10, 29), 60.0),
    (date(2026, 11, 5), None),  # could not be scored (fail policy): skipped
    (date(2026, 11, 12), 38.0),
    (date(2026, 11, 19), 35.5),
    (date(2026, 11, 26), 39.0),
]
AS_OF = date(2026, 11, 26)


@pytest.mark.parametrize(
    ("as_of", "days", "expected"),
    [
        (AS_OF, 7, 3.5),  # 39 - 35.5 (Nov 19)
        (AS_OF, 30, -39.0),  # 39 - 78: Oct 22 is the latest point at or before Oct 27
        (AS_OF, 56, -31.0),  # 39 - 70 (Oct 1, exactly 56 days back)
        (AS_OF, 60, None),  # nothing as old as Sep 27
        (date(2026, 10, 29), 14, -22.0),  # 60 - 82: later points are not known yet
        (date(2026, 11, 28), 2, 0.0),  # nothing new since Nov 26: no change
    ],
)
def test_score_change(as_of: date, days: int, expected: float | None) -> None:
    assert score_change(HISTORY, as_of, days) == expected


@pytest.mark.parametrize(
    ("as_of", "days", "expected"),
    [
        (AS_OF, 7, 0.0),  # 35.5 -> 39 is a recovery, not a drop
        (AS_OF, 14, 0.0),  # 38, 35.5, 39: the latest is the peak
        (AS_OF, 30, 21.0),  # window Oct 27..Nov 26: peak 60 (Oct 29) - latest 39
        (AS_OF, 45, 43.0),  # window from Oct 12: peak 82 - latest 39
        (date(2026, 11, 19), 30, 42.5),  # window Oct 20..Nov 19: 78 - 35.5
        (date(2026, 9, 1), 30, None),  # no snapshot in the window
    ],
)
def test_score_drop_is_peak_in_window_minus_latest(as_of: date, days: int, expected: float | None) -> None:
    assert score_drop(HISTORY, as_of, days) == expected


def test_low_score_streak_counts_latest_snapshots_below_threshold() -> None:
    assert low_score_streak(HISTORY, 40) == 3  # 38, 35.5, 39 (the unscored week is skipped)
    assert low_score_streak(HISTORY, 39) == 0  # 39 is not below 39
    assert low_score_streak(HISTORY, 100) == 8
    assert low_score_streak([], 40) == 0


def test_sudden_changes_between_consecutive_scored_snapshots() -> None:
    changes = sudden_changes(HISTORY, 8)
    assert [(c.start, c.end, c.delta) for c in changes] == [
        (date(2026, 10, 8), date(2026, 10, 15), 8.0),
        (date(2026, 10, 22), date(2026, 10, 29), -18.0),
        (date(2026, 10, 29), date(2026, 11, 12), -22.0),  # across the unscored week
    ]
    assert sudden_changes(HISTORY, 30) == []


@pytest.mark.parametrize(
    ("as_of", "days", "flat_band", "expected"),
    [
        (AS_OF, 7, 2.0, "up"),  # +3.5
        (AS_OF, 7, 5.0, "flat"),  # +3.5 within ±5
        (AS_OF, 30, 2.0, "down"),  # -39
        (AS_OF, 60, 2.0, "flat"),  # no older point
        (date(2026, 10, 15), 7, 2.0, "up"),  # +8
    ],
)
def test_direction(as_of: date, days: int, flat_band: float, expected: str) -> None:
    assert direction(HISTORY, as_of, days, flat_band) == expected


def test_datetimes_and_dates_mix() -> None:
    history = [(date(2026, 11, 1), 50.0), (datetime(2026, 11, 8, 9, 30, tzinfo=UTC), 40.0)]
    assert score_change(history, datetime(2026, 11, 8, 12, 0, tzinfo=UTC), 7) == -10.0
    assert score_change(history, datetime(2026, 11, 8, 9, 0, tzinfo=UTC), 7) == 0.0  # 9:30 not yet


def test_sparkline() -> None:
    assert sparkline([0, 25, 50, 75, 100], lo=0, hi=100) == "▁▃▅▆█"
    assert sparkline([70, 74, 82, 78, 60, None, 38, 35.5, 39]) == "▆▇█▇▅ ▁▁▂"  # own min..max, gap for None
    assert sparkline([50, 50]) == "▄▄"
    assert sparkline([]) == ""
    assert sparkline([120, -5], lo=0, hi=100) == "█▁"
