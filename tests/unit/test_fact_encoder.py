"""The compiled fact encoder writes what `encode_fact` writes, restricted to the facts the rules read."""

from __future__ import annotations

import json
from typing import Any

from pulsecheck.rules.durable import FactEncoder, encode_fact

FACTS: list[dict[str, Any]] = [
    {"score": 12.345678, "bucket": 'at "risk"', "kpi.nps": -3, "has_open_review": True, "arr": 1.0},
    {"score": float("nan"), "bucket": None, "kpi.nps": 1e17, "has_open_review": False, "arr": 2.0},
    {"score": 2e16, "kpi.nps": -123456789012345678, "has_open_review": 0, "open_complaints": 3},
    {"score": float("inf"), "bucket": "ünïcode", "open_complaints": 0},
    {},
]


def test_the_encoder_agrees_with_encode_fact_on_the_fields_it_reads() -> None:
    encoder = FactEncoder(["score", "bucket", "kpi.nps", "has_open_review", "open_complaints"])
    for account, facts in enumerate(FACTS):
        expected = json.loads(encode_fact(account, facts))
        expected.pop("arr", None)  # not read by these rules: not sent
        text = encoder.encode(account, facts)
        assert json.loads(text) == expected
        assert "e+" not in text and "e1" not in text  # never an exponent: the C core would crash on it


def test_numbers_are_rounded_and_booleans_are_numbers() -> None:
    text = FactEncoder(["score", "has_open_review"]).encode(7, {"score": 12.345678, "has_open_review": True})
    assert json.loads(text) == {"id": "account:7", "kind": "account", "score": 12.3457, "has_open_review": 1}
