"""Human output: values as a person reads them (expected strings written by hand)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from pulsecheck import humanize as h
from pulsecheck.commands import common

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 11, 24, 9, 0, 59, 123456, tzinfo=UTC), "2026-11-24 10:00"),  # CET, microseconds dropped
        (datetime(2026, 7, 1, 22, 30, tzinfo=UTC), "2026-07-02 00:30"),  # CEST crosses midnight
        ("2026-11-24T09:00:00+00:00", "2026-11-24 10:00"),
        (None, "-"),
    ],
)
def test_times_are_in_the_business_zone_to_the_minute(value: object, expected: str) -> None:
    assert h.when(value, BERLIN) == expected  # type: ignore[arg-type]


def test_money_scores_changes_and_words() -> None:
    assert [h.money(240000.0), h.money(1234.5), h.money(None), h.money(0)] == ["240,000", "1,234.50", "-", "0"]
    assert [h.score(59.99), h.score(64.8), h.score(70.0), h.score(None)] == ["59.99", "64.8", "70", "-"]
    assert [h.change(-4.81), h.change(2.0), h.change(0.0), h.change(None)] == ["-4.81", "+2", "0", "-"]
    assert h.word({"duplicate": 1, "stale": 2}) == "duplicate 1, stale 2"
    assert [h.word(True), h.word(False), h.word(None), h.word([]), h.word(["a", "b"])] == ["yes", "no", "-", "-",
                                                                                            "a, b"]
    assert h.day("2026-11-24T23:30:00+00:00", BERLIN) == "2026-11-25"
    assert h.day(date(2026, 1, 2)) == "2026-01-02"
    assert [h.review_kind("out_of_cycle"), h.review_kind("manual")] == ["rule", "manual"]


def test_markdown_is_rendered_on_a_terminal_and_plain_when_piped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "# Health review 1\n\n- State: **draft**\n\x1b]0;owned\x07"
    monkeypatch.setattr(common, "is_terminal", lambda: False)
    common.show_markdown(text)
    assert capsys.readouterr().out == "# Health review 1\n\n- State: **draft**\n"  # as is, controls stripped
    monkeypatch.setattr(common, "is_terminal", lambda: True)
    monkeypatch.setattr(common, "show", lambda shown: print(shown, end=""))
    common.show_markdown(text)
    out = capsys.readouterr().out
    assert "Health review 1" in out and "draft" in out
    assert "# Health" not in out and "**draft**" not in out and "\x1b]0;" not in out


def test_tables_fit_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    rendered = common.render_table([(1, "A very long reason " * 8, None)], ["id", "reason", "owner"])
    assert max(len(line) for line in rendered.splitlines()) <= 60
    assert "-" in rendered.splitlines()[3]  # None shows as `-`
