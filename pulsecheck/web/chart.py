"""The account page's score history chart: the scorecard's stored history in, the coordinates of an inline SVG out
(drawn on the server: the Content-Security-Policy allows no script, and the page needs none).

Time runs left to right in proportion to the dates of the snapshots; scores and subscores run 0 (bottom) to 100
(top). A missing value breaks its line rather than drawing it through zero."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 10, 30  # room for the axis labels
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
GRID = (0, 25, 50, 75, 100)
PALETTE = 6  # group lines take the classes series-g0 .. series-g5 of style.css, in turn


@dataclass(frozen=True)
class Point:
    """One snapshot's value at its place on the chart."""

    x: float
    y: float
    when: str
    value: float


@dataclass(frozen=True)
class Series:
    """One line: the score or a group's subscore, its points and the polylines between them."""

    name: str
    label: str
    css: str
    points: list[Point]
    lines: list[str] = field(default_factory=list)  # SVG `points` attributes, one per unbroken run


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: float
    bottom: float
    grid: list[tuple[float, int]]  # (y, score)
    ticks: list[tuple[float, str]]  # (x, date)
    series: list[Series]


def x_of(moment: datetime, first: datetime, last: datetime) -> float:
    """Where `moment` falls between the first and last snapshot; a lone snapshot sits in the middle."""
    span = (last - first).total_seconds()
    if span <= 0:
        return round(LEFT + PLOT_WIDTH / 2, 1)
    return round(LEFT + PLOT_WIDTH * (moment - first).total_seconds() / span, 1)


def y_of(value: float) -> float:
    """The height of a 0..100 value (clamped), 100 at the top."""
    return round(TOP + PLOT_HEIGHT * (100 - min(100.0, max(0.0, value))) / 100, 1)


def history_chart(history: list[dict[str, Any]], groups: list[dict[str, Any]], tz: tzinfo) -> Chart | None:
    """The chart of a scorecard's `history` (oldest first) with a line per group of `groups` that has a value;
    None without history."""
    if not history:
        return None
    moments = [datetime.fromisoformat(h["as_of"]) for h in history]
    first, last = moments[0], moments[-1]
    xs = [x_of(m, first, last) for m in moments]
    days = [f"{m.astimezone(tz).day} {m.astimezone(tz):%b %Y}" for m in moments]

    def series(name: str, label: str, css: str, values: list[Any]) -> Series:
        points: list[Point] = []
        lines: list[str] = []
        run: list[str] = []
        for x, day, value in zip(xs, days, values, strict=True):
            if value is None:
                lines += [" ".join(run)] if run else []
                run = []
                continue
            point = Point(x, y_of(float(value)), day, float(value))
            points.append(point)
            run.append(f"{point.x},{point.y}")
        lines += [" ".join(run)] if run else []
        return Series(name, label, css, points, [line for line in lines if " " in line])

    drawn = [series("score", "Score", "series-score", [h["score"] for h in history])]
    with_values = [g for g in groups if any(h["groups"].get(g["name"]) is not None for h in history)]
    for index, group in enumerate(with_values):
        values = [h["groups"].get(group["name"]) for h in history]
        drawn.append(series(group["name"], group["label"], f"series-g{index % PALETTE}", values))
    ticks = [(xs[0], days[0])] + ([(xs[-1], days[-1])] if len(xs) > 1 else [])
    return Chart(WIDTH, HEIGHT, LEFT, WIDTH - RIGHT, TOP + PLOT_HEIGHT, [(y_of(v), v) for v in GRID], ticks, drawn)
