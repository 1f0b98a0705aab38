"""The JSON texts that digests are computed over keep their exact bytes: a stored signature, seal or model hash
must still verify after any refactoring. Each expected text is written out here by hand."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulsecheck.jsontext import (
    CANONICAL,
    MODEL_DIGEST,
    REVIEW_SIGNATURE,
    canonical_json,
    dumps_encoder,
    readable_json,
    tree_encoder,
)
from pulsecheck.scoring.schema import parse_model
from pulsecheck.states.cycle import seal_digest
from pulsecheck.states.review import ActionData, ReviewContent, RiskData, employee_digest, manager_digest


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


CONTENT = ReviewContent(
    account="ACME", reviewer="zoë", approver="maria", account_goals="Grow to 500 seats",
    next_review_date=date(2027, 2, 22), manager_comments="Agreed",
    risks=(RiskData(1, "Champion leaving", severity="high"),),
    actions=(ActionData(1, "Second champion", risk_number=1, owner="bob", due_date=date(2026, 12, 20)),),
)
# json.dumps' default spacing, non-ASCII escaped: how review signatures have been computed since 0.1
_ACTIONS = ('"actions": [{"description": "Second champion", "due_date": "2026-12-20", "number": 1, "owner": "bob", '
            '"risk_number": 1, "status": "open", "success_criteria": null}]')
_RISKS = ('"risks": [{"category": "customer", "description": "Champion leaving", "evidence": null, "impact": null, '
          '"number": 1, "severity": "high"}]')
EMPLOYEE_TEXT = ('{"account": "ACME", "account_goals": "Grow to 500 seats", ' + _ACTIONS + ', '
                 '"employee_comments": null, "goal_summary": null, "next_review_date": "2027-02-22", '
                 '"overall_assessment": null, "reviewer": "zo\\u00eb", ' + _RISKS + '}')
MANAGER_TEXT = EMPLOYEE_TEXT.replace('"goal_summary": null, ', '"goal_summary": null, "manager_comments": "Agreed", ')


def test_review_signature_digests_keep_their_bytes() -> None:
    assert employee_digest(CONTENT) == sha256(EMPLOYEE_TEXT)
    assert manager_digest(CONTENT) == sha256(MANAGER_TEXT)


def test_the_cycle_seal_is_compact_utf8_with_datetimes_in_utc() -> None:
    content = {"b": [1, datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))], "a": "Zoë",
               "d": date(2026, 11, 1), "c": {"y": None, "x": (2.5, True)}}
    text = '{"a":"Zoë","b":[1,"2026-11-24T09:00:00+00:00"],"c":{"x":[2.5,true],"y":null},"d":"2026-11-01"}'
    assert canonical_json(content) == text
    assert seal_digest(content) == sha256(text)


def test_the_model_digest_is_compact_with_non_ascii_escaped() -> None:
    model = parse_model(
        'version: "2026.11-é"\nkpis:\n  - {name: usage, weight: 100, scale: {min: 0, max: 100}}\n'
        "buckets:\n  - {name: unhealthy, below: 40, color: orange}\n  - {name: healthy, color: blue}\n",
        "model.yaml",
    )
    text = json.dumps(model.canonical(), sort_keys=True, separators=(",", ":"))  # ensure_ascii: json's default
    assert "\\u00e9" in text and ", " not in text
    assert model.digest() == sha256(text)


def test_readable_json_keeps_key_order_and_text() -> None:
    data = {"z": "Zoë", "a": [1, {"at": datetime(2026, 11, 24, 9, 0, tzinfo=UTC)}], "n": Decimal("1.50")}
    assert readable_json(data) == (
        '{\n  "z": "Zoë",\n  "a": [\n    1,\n    {\n      "at": "2026-11-24 09:00:00+00:00"\n    }\n  ],\n'
        '  "n": "1.50"\n}'
    )


def test_a_tree_encoder_writes_what_json_dumps_writes() -> None:
    """The encoder the audit chain and the review digests make once: json.dumps' text, byte for byte, in each
    form, with the default spelling dates; what it cannot spell is refused as json refuses it."""

    def spell(value: object) -> str:
        if isinstance(value, date):
            return value.isoformat()
        raise TypeError("not JSON")

    tree = {"b": [1, 2.5, None, True, 'é ✓ "q"'], "a": {"z": date(2026, 11, 30), "y": []}, "c": "x\ny\\"}
    for form in (CANONICAL, REVIEW_SIGNATURE, MODEL_DIGEST):
        expected = json.dumps(tree, sort_keys=True, separators=form.separators, ensure_ascii=form.ascii_only,
                              default=spell)
        assert tree_encoder(form, spell)(tree) == expected
    with pytest.raises(TypeError):
        tree_encoder(CANONICAL, spell)({"a": object()})


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON_VALUES)
def test_a_json_columns_text_is_json_dumps_text(value: object) -> None:
    """What a JSON column stores (the engines' serializer) is `json.dumps`' text of the value, whatever it holds:
    any text, NaN and infinities, big integers, nesting."""
    assert dumps_encoder()(value) == json.dumps(value)


def test_a_json_column_refuses_what_json_dumps_refuses() -> None:
    with pytest.raises(TypeError, match="Object of type Decimal is not JSON serializable"):
        dumps_encoder()({"a": Decimal("1.5")})
