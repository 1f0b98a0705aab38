"""The context an outbox row's payload carries: the notice's context with its times as ISO text, in its order."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pulsecheck.notifications.outbox import _plain

VALUES = st.one_of(
    st.text(max_size=6),
    st.integers(),
    st.none(),
    st.booleans(),
    st.dates(),
    st.datetimes(),  # naive
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))])),
)


@settings(max_examples=300, deadline=None)
@given(context=st.dictionaries(st.text(max_size=4), VALUES, max_size=10))
def test_the_payload_context_is_the_context_with_times_as_iso_text(context: dict[str, Any]) -> None:
    """As the comprehension that first made it: each datetime (naive or aware) as its isoformat, every other value
    (a date too) as it is, the keys in the context's order; the context itself left alone."""
    before = dict(context)
    expected = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in context.items()}
    plain = _plain(context)
    assert plain == expected and list(plain) == list(expected)
    assert context == before and (plain is not context)
    assert all(type(v) is not datetime for v in plain.values())
    assert json.dumps(plain, default=str) == json.dumps(expected, default=str)
    assert not any(isinstance(v, date) and isinstance(v, datetime) for v in plain.values())
