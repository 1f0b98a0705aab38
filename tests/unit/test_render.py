"""Notification templates: what a recipient reads in the subject and body of each kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulsecheck.errors import InputError
from pulsecheck.notifications.render import KINDS, TEMPLATES_DIR, compose, render, render_each

FULL = {
    "account_name": "Acme Corp",
    "account_id": "ACME-001",
    "review_id": 12,
    "escalation_id": 7,
    "rule_id": "drop-with-complaints",
    "severity": "high",
    "priority": "P1",
    "reason": "Score dropped 18 points with 2 open complaints",
    "level": 2,
    "due_at": datetime(2026, 3, 14, 9, 0, tzinfo=UTC),
    "comment": "Risks are vague.\nAdd evidence for risk 2.",
    "actor": "maria",
    "count": 2,
    "items": ["[pulsecheck] HIGH escalation #7: Acme Corp", "[pulsecheck] HIGH escalation #8: Globex"],
    "day": "2026-03-14",
    "reminder": 3,
    "state": "submitted",
    "recipient_name": "Sam",
    "message": "Renewal in 30 days.\nCall the executive sponsor.",
    "cycle_id": 3,
    "period": "2026-Q4",
    "event": "submitted",
}

# kind -> (text the subject shows, CLI command the body shows, keys the template cannot do without)
CASES = {
    "escalation_opened": (
        "HIGH escalation #7: Acme Corp",
        "pulsecheck escalations list --open",
        ["account_name", "account_id", "escalation_id", "severity", "reason"],
    ),
    "escalation_level_up": (
        "Escalation #7 raised to level 2: Acme Corp",
        "pulsecheck escalations ack 7",
        ["account_name", "account_id", "escalation_id", "severity", "level"],
    ),
    "review_due": (
        "Reminder 3: review #12 for Acme Corp is due 2026-03-14 09:00 UTC",
        "pulsecheck review show 12",
        ["account_name", "review_id", "due_at", "reminder"],
    ),
    "review_overdue": (
        "Overdue: review #12 for Acme Corp was due 2026-03-14 09:00 UTC",
        "pulsecheck review show 12",
        ["account_name", "review_id", "due_at", "reminder", "state"],
    ),
    "review_submitted": (
        "Review #12 for Acme Corp awaits your approval",
        "pulsecheck review approve 12",
        ["account_name", "review_id", "actor"],
    ),
    "review_rejected": (
        "Review #12 for Acme Corp was rejected by maria",
        "pulsecheck review show 12",
        ["account_name", "review_id", "actor", "comment"],
    ),
    "review_approved": (
        "Review #12 for Acme Corp was approved by maria",
        "pulsecheck review show 12",
        ["account_name", "review_id", "actor"],
    ),
    "review_opened": (
        "P1 review #12 opened for Acme Corp",
        "pulsecheck review show 12",
        ["account_name", "account_id", "review_id", "rule_id"],
    ),
    "generic": (
        "Acme Corp: Renewal in 30 days.",
        "pulsecheck accounts show ACME-001",
        ["account_name", "account_id", "rule_id", "message"],
    ),
    "digest": ("Digest 2026-03-14: 2 notifications", "pulsecheck escalations list --open", ["count", "items", "day"]),
    "cycle_event": (
        "Review cycle #3 (2026-Q4) was submitted by maria",
        "pulsecheck cycle approve 3",
        ["cycle_id", "period", "event", "actor"],
    ),
}


def test_every_kind_has_a_case_and_a_template() -> None:
    templates = {p.name.removesuffix(".txt.j2") for p in Path(TEMPLATES_DIR).glob("*.txt.j2")}
    assert set(CASES) == set(KINDS) == templates


@pytest.mark.parametrize("kind", KINDS)
def test_subject_and_cli_command(kind: str) -> None:
    subject_text, command, _ = CASES[kind]
    subject, body = render(kind, FULL)
    assert subject.startswith("[pulsecheck] ")
    assert subject_text in subject
    assert "\n" not in subject
    assert "Subject:" not in body
    assert body.startswith("Hello Sam,\n\n")
    assert command in body
    assert body.endswith("\n") and not body.endswith("\n\n")


@pytest.mark.parametrize(
    ("kind", "key"), [(kind, key) for kind, (_, _, keys) in CASES.items() for key in keys]
)
def test_missing_required_key_is_named(kind: str, key: str) -> None:
    context = {k: v for k, v in FULL.items() if k != key}
    with pytest.raises(InputError, match=f"context key '{key}' is missing"):
        render(kind, context)


def test_none_or_blank_counts_as_missing() -> None:
    with pytest.raises(InputError, match="'comment'"):
        render("review_rejected", {**FULL, "comment": "   "})
    with pytest.raises(InputError, match="'reason'"):
        render("escalation_opened", {**FULL, "reason": None})


def test_optional_keys_are_left_out_when_absent() -> None:
    minimal = {"account_name": "Acme Corp", "review_id": 5, "actor": "maria"}
    subject, body = render("review_approved", minimal)
    assert subject == "[pulsecheck] Review #5 for Acme Corp was approved by maria"
    assert body.startswith("Hello there,\n")
    assert "comment" not in body and "None" not in body
    assert "pulsecheck review show 5" in body


def test_unknown_kind_lists_valid_kinds() -> None:
    with pytest.raises(InputError) as info:
        render("review_exploded", FULL)
    assert "review_exploded" in str(info.value)
    assert "review_submitted" in str(info.value) and "generic" in str(info.value)


def test_rejection_comment_keeps_its_lines() -> None:
    _, body = render("review_rejected", FULL)
    assert "    Risks are vague.\n    Add evidence for risk 2.\n" in body
    assert "pulsecheck review history 12" in body


def test_line_breaks_in_names_cannot_break_the_subject() -> None:
    subject, body = render("escalation_opened", {**FULL, "account_name": "Acme\n\nBcc: evil@example.com"})
    assert subject == "[pulsecheck] HIGH escalation #7: Acme Bcc: evil@example.com"
    assert body.startswith("Hello Sam,")


def test_deadlines_are_shown_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    subject, _ = render("review_due", {**FULL, "due_at": datetime(2026, 3, 14, 10, 30, tzinfo=paris)})
    assert subject.endswith("is due 2026-03-14 09:30 UTC")


def test_account_ids_with_spaces_are_quoted_in_commands() -> None:
    _, body = render("generic", {**FULL, "account_id": "ACME 001"})
    assert "pulsecheck rules explain --account 'ACME 001'" in body


def test_compose_addresses_the_recipient() -> None:
    context = {k: v for k, v in FULL.items() if k != "recipient_name"}
    message = compose(
        "review_submitted", context, recipient_name="Lee", recipient_email="lee@example.com", dedupe_key="k1"
    )
    assert message.body.startswith("Hello Lee,")
    assert message.recipient_email == "lee@example.com"
    assert message.subject == "[pulsecheck] Review #12 for Acme Corp awaits your approval"
    assert message.to_dict()["context"]["due_at"] == "2026-03-14T09:00:00+00:00"


def test_times_show_in_the_business_time_zone_and_calls_to_action_as_links() -> None:
    # 09:00 UTC on 14 March 2026 is 10:00 in Berlin (CET, UTC+1: summer time starts on 29 March)
    subject, body = render("review_due", {**FULL, "timezone": "Europe/Berlin", "base_url": "https://pc.example"})
    assert subject.endswith("is due 2026-03-14 10:00 CET")
    assert "Open it:    https://pc.example/reviews/12\n" in body and "pulsecheck review" not in body
    _, body = render("escalation_opened", {**FULL, "timezone": "America/New_York"})
    assert "Ack before: 2026-03-14 05:00 EDT" in body  # New York is on summer time from 8 March


def test_notices_of_one_shape_each_show_their_own_values() -> None:
    """Many notices of one kind and layout (an evaluation's escalations) each read their own account, severity,
    due time and id, however many came before; text that looks like a format or a marker is printed as is."""
    rows = [
        ("Acme Corp", "ACME-001", 7, "high", datetime(2026, 3, 14, 9, 0, tzinfo=UTC), "UTC", "2026-03-14 09:00 UTC"),
        ("Globex 100%", "GLX %s", 8, "critical", datetime(2026, 3, 14, 9, 0, tzinfo=UTC), "UTC",
         "2026-03-14 09:00 UTC"),
        ("Ini\ue000tech", "INI-3", 9, "high", datetime(2026, 7, 1, 12, 30, tzinfo=UTC), "Europe/Berlin",
         "2026-07-01 14:30 CEST"),
        ("Acme Corp", "ACME-001", 10, "low", datetime(2026, 3, 14, 9, 0, tzinfo=timezone(timedelta(hours=1))),
         "UTC", "2026-03-14 08:00 UTC"),
    ]  # fmt: skip
    for name, external, number, severity, due, zone, shown in rows:
        subject, body = render(
            "escalation_opened",
            {"account_name": name, "account_id": external, "escalation_id": number, "severity": severity,
             "reason": "r", "due_at": due, "timezone": zone, "recipient_name": "Sam"},
        )  # fmt: skip
        assert subject == f"[pulsecheck] {severity.upper()} escalation #{number}: {name}"
        assert f"An escalation was opened for {name} ({external})." in body
        assert f"  Severity:   {severity}\n" in body
        assert f"  Ack before: {shown}\n" in body
        assert body.endswith(f"Acknowledge it:        pulsecheck escalations ack {number}\n")


# Names as people write them: blanks around and inside, other scripts, shell and template characters.
NAMES = st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from(" \t\n"), max_size=12)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(KINDS), names=st.lists(NAMES, min_size=0, max_size=4), base_url=st.booleans())
def test_a_notice_rendered_once_for_its_recipients_reads_as_if_rendered_for_each(
    kind: str, names: list[str], base_url: bool
) -> None:
    """Every recipient of a notice gets the very subject and body a rendering for them alone gives."""
    context = dict(FULL, base_url="https://pulse.example.com" if base_url else None)
    one_by_one = [render(kind, dict(context, recipient_name=name)) for name in names]
    assert render_each(kind, context, names) == one_by_one


VALUES = st.one_of(
    NAMES,
    st.text(alphabet=st.sampled_from("\x1d\x1a|ab {}%'\n"), max_size=8),  # markers' characters, formats, quotes
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.booleans(),
    st.none(),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-3))])),
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    values=st.dictionaries(st.sampled_from(sorted(FULL)), VALUES, max_size=8),
    zone=st.sampled_from([None, "UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu"]),
)
def test_any_notice_reads_as_its_template_rendered_with_its_values(
    kind: str, values: dict[str, object], zone: str | None
) -> None:
    """However many notices of a kind came before, each reads exactly what Jinja renders from its own values
    (or names the same missing key), in whatever time zone its times are shown."""
    from pulsecheck.notifications.render import _clean, _environment, _split

    context = dict(FULL, **values) | ({"timezone": zone} if zone else {})
    try:
        expected: object = _split(kind, _environment().get_template(f"{kind}.txt.j2").render(_clean(context)))
    except Exception as exc:  # noqa: BLE001 - the same key must be named missing
        expected = type(exc).__name__
    try:
        got: object = render(kind, context)
    except InputError:
        got = "UndefinedError"
    except Exception as exc:  # noqa: BLE001 - a value a filter cannot take fails alike
        got = type(exc).__name__
    assert got == expected


def _clean_as_before(context: dict[str, Any]) -> dict[str, Any]:
    """`_clean` as first written: blank values dropped by `strip()`, single-line text folded."""
    from pulsecheck.notifications.render import _MULTILINE_KEYS

    cleaned: dict[str, Any] = {}
    for key, value in context.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, str):
            value = value.strip("\n") if key in _MULTILINE_KEYS else " ".join(value.split())
        cleaned[key] = value
    return cleaned


WHITESPACE = st.text(alphabet=st.sampled_from(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2003\u2028\u3000ab"),
                     max_size=8)  # what split() and strip() take for blank, and text


@settings(max_examples=500, deadline=None)
@given(values=st.dictionaries(st.sampled_from(sorted(FULL) + ["recipient_name", "timezone", "base_url"]),
                              st.one_of(VALUES, WHITESPACE), max_size=12))
def test_cleaning_drops_and_folds_as_it_did(values: dict[str, Any]) -> None:
    """Every kind of blank (Unicode whitespace included) is dropped, and the rest folded, as before: same keys in
    the same order, same values."""
    from pulsecheck.notifications.render import _clean

    cleaned = _clean(values)
    assert cleaned == _clean_as_before(values) and list(cleaned) == list(_clean_as_before(values))
