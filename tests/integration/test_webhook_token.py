"""The webhook's bearer token goes to the configured URL only: a per-user webhook URL is set by that user, so it
must never see the token (a real HTTP receiver on loopback records what arrived)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pulsecheck.notifications.channels import build_channel
from pulsecheck.notifications.message import Message
from tests.integration.conftest import Receiver

TOKEN = "tok-only-for-the-team-hook-7731"


def message(recipient_webhook: str | None) -> Message:
    return Message(
        kind="review_submitted",
        recipient_name="Eve",
        recipient_email="eve@example.com",
        recipient_webhook=recipient_webhook,
        subject="[pulsecheck] Review #3 awaits your approval",
        body="Hello Eve,\n",
        dedupe_key=f"review:3:submitted:{recipient_webhook}",
        context={"review_id": 3, "at": datetime(2026, 11, 24, tzinfo=UTC)},
    )


def test_the_token_goes_to_the_configured_url_and_never_to_a_users_own(receiver: Receiver) -> None:
    channel = build_channel(
        "webhook", {"url": f"{receiver.url}/team-hook", "token_env": "HOOK_TOKEN", "timeout": 5},
        env={"HOOK_TOKEN": TOKEN},
    )
    channel.send(message(None))
    channel.send(message(f"{receiver.url}/eve-collects-tokens"))
    channel.send(message(f"{receiver.url}/team-hook"))  # a user may point at the team hook itself: it is the same

    seen: list[tuple[str, Any]] = [(r["path"], r["headers"].get("Authorization")) for r in receiver.requests]
    assert seen == [
        ("/team-hook", f"Bearer {TOKEN}"),
        ("/eve-collects-tokens", None),
        ("/team-hook", f"Bearer {TOKEN}"),
    ]
    assert all(TOKEN not in str(r) for r in receiver.requests if r["path"] == "/eve-collects-tokens")
