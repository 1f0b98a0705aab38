"""The bounds of every YAML load (models, rules, review forms): size, depth, values once aliases expand, finite
numbers, plain tags; each refusal is immediate and names the file and line. Durations are bounded too."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from pulsecheck.errors import InputError
from pulsecheck.timeutil import MAX_DURATION, parse_duration
from pulsecheck.yamlfile import Limits, load_file, load_text

LAUGHS = "".join(
    [f"l0: &l0 [{', '.join(['lol'] * 9)}]\n"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)]
)


def refusal(text: str, limits: Limits = Limits()) -> str:
    with pytest.raises(InputError) as caught:
        load_text(text, "f.yaml", limits)
    return str(caught.value)


def test_a_billion_laughs_is_refused_in_milliseconds_at_the_line_that_crosses_the_bound() -> None:
    start = time.perf_counter()
    assert refusal(LAUGHS) == "f.yaml:7: over 1,000,000 values once aliases are expanded"
    assert time.perf_counter() - start < 1.0


def test_aliases_within_the_bounds_still_work() -> None:
    data = load_text("base: &b {weight: 10, max_age: 7d}\nkpis: [*b, *b]\n", "f.yaml")
    assert data["kpis"] == [{"weight": 10, "max_age": "7d"}] * 2


@pytest.mark.parametrize(
    "text, says",
    [
        ("a: &a [*a]\n", "f.yaml:1: an alias refers to a node that contains it"),
        ("x: " + "[" * 65 + "]" * 65 + "\n", "f.yaml:1: nested deeper than 64 levels"),
        ("x: .nan\n", "f.yaml:1: '.nan' is not a finite number"),
        ("x:\n  y: -.INF\n", "f.yaml:2: '-.INF' is not a finite number"),
        (
            "x: 9223372036854775808\n",
            "f.yaml:1: integer 9223372036854775808 is out of range (at most 9223372036854775807)",
        ),
        ("x: " + "1" * 31 + "\n", "f.yaml:1: integer 11111111111111111111... has over 30 digits"),
        ("x: !!set {a}\n", "f.yaml:1: YAML tag 'set' is not supported"),
        ("x: 1\nx: 2\n", "f.yaml:2: duplicate key 'x'"),
        ("x: \x00\n", "f.yaml:1: invalid YAML: character 0x0000 is not allowed"),
    ],
)
def test_each_refusal_names_file_and_line(text: str, says: str) -> None:
    assert refusal(text) == says


def test_limits_can_be_given_by_the_caller() -> None:
    assert refusal("a: [[[1]]]\n", Limits(max_depth=3)) == "f.yaml:1: nested deeper than 3 levels"
    assert refusal("a: [1, 2, 3]\n", Limits(max_nodes=4)).endswith("over 4 values once aliases are expanded")
    assert refusal("a: 1\n", Limits(max_bytes=3)) == "f.yaml: over the limit of 3 bytes"


def test_files_are_regular_utf8_and_within_the_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * 200 + b"\n")
    with pytest.raises(InputError, match=r"big.yaml: 203 bytes is over the limit of 100 bytes"):
        load_file(big, Limits(max_bytes=100))
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: 1\nname: Caf\xe9\n")
    with pytest.raises(InputError, match=r"latin.yaml: not UTF-8 text: byte 0xe9 at offset 14 \(line 2\)"):
        load_file(latin)
    with pytest.raises(InputError, match="/dev/zero: not a regular file"):
        load_file("/dev/zero")
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfa: 1\r\nb: [x]\r\n")
    assert load_file(bom) == {"a": 1, "b": ["x"]}


@pytest.mark.parametrize("text", ["99999999999d", "36526d", "5219w", "876601h", 36526, "1" * 5000 + "d"])
def test_durations_beyond_a_hundred_years_are_refused_not_overflowed(text: str | int) -> None:
    with pytest.raises(InputError, match="due_in: "):
        parse_duration(text, "due_in")


def test_a_hundred_years_is_the_longest_duration() -> None:
    assert parse_duration("36525d") == MAX_DURATION == timedelta(days=36525)
    assert parse_duration(36525) == MAX_DURATION
