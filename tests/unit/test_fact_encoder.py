"""The compiled fact encoder writes what `encode_fact` writes, restricted to the facts the rules read."""

from __future__ import annotations

import json
import random
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


def test_a_block_is_encoded_as_each_account_alone() -> None:
    """Column by column, with the texts of repeated values cached, a block reads exactly as its accounts one by
    one: equal keys of other types (1, 1.0, True; 0.0 and -0.0) keep their own texts, missing facts stay out."""
    values = [0.0, -0.0, 1.0, 1, True, False, 0, 12.345678, 1e17, float("nan"), float("inf"), 10**16, "x", None]
    encoder = FactEncoder(["score", "kpi.nps", "bucket"])
    rnd = random.Random(5)
    for _ in range(50):
        pool = rnd.sample(values, rnd.randint(1, 5))
        block = [
            (rnd.randint(0, 10**6), {name: rnd.choice(pool) for name in ("score", "kpi.nps") if rnd.random() < 0.9})
            for _ in range(rnd.randint(1, 30))
        ]
        expected = [FactEncoder(encoder.names).encode(account, facts) for account, facts in block]
        assert encoder.encode_block(block) == expected
