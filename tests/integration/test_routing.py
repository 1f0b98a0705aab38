"""Routing per kind and severity to several channels, addresses read at send time, times in the business time
zone, links under base_url and Slack bodies, checked on what a real SMTP server and HTTP receiver get."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pulsecheck.config import Settings
from pulsecheck.notifications.dispatch import dispatch, retry_notification
from pulsecheck.notifications.outbox import Routing
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, User
from pulsecheck.workflow.users import add_user
from tests.conftest import NOW, Factory
from tests.integration.conftest import Inbox, Receiver, configure, rows

DUE = datetime(2026, 11, 26, 16, 30, tzinfo=UTC)  # 17:30 in Berlin (CET, UTC+1, in November)


def channels_toml(smtp_port: int, receiver: Receiver, extra: str = "", routes: str = "") -> str:
    return (
        f'timezone = "Europe/Berlin"\n[notifications]\nchannel = "log"\n{extra}\n'
        f"[notifications.routes]\n{routes}\n"
        f'[notifications.email]\nhost = "127.0.0.1"\nport = {smtp_port}\nfrom = "pc@example.com"\ntimeout = 5\n'
        f'[notifications.webhook]\nurl = "{receiver.url}/hook"\ntimeout = 5\n'
    )


ROUTES = 'reminder = ["email"]\nescalation = {default = ["email"], critical = ["email", "webhook"]}\n'


def notify(database: Database, settings: Settings, kind: str, context: dict[str, Any], key: str) -> None:
    with database.transaction() as session:
        account = session.scalar(select(Account).where(Account.external_id == "ACME"))
        assert account is not None
        Routing.from_settings(settings).notify(session, kind, ["owner"], account, None, context, key, NOW)


def escalation(severity: str, number: int) -> dict[str, Any]:
    return {"escalation_id": number, "severity": severity, "reason": "score fell", "due_at": DUE}


def test_reminders_go_by_email_and_critical_escalations_by_email_and_webhook(
    tmp_path: Path, database: Database, factory: Factory, smtp: tuple[Inbox, int], receiver: Receiver
) -> None:
    factory.team()
    inbox, port = smtp
    settings = configure(tmp_path, database, channels_toml(port, receiver, routes=ROUTES))
    notify(database, settings, "review_due", {"review_id": 4, "due_at": DUE, "reminder": 1}, "due:4:1")
    notify(database, settings, "escalation_opened", escalation("high", 7), "escalation:7:0")
    notify(database, settings, "escalation_opened", escalation("critical", 8), "escalation:8:0")
    notify(database, settings, "escalation_opened", escalation("critical", 8), "escalation:8:0")  # deduped
    assert [(r.kind, r.channel) for r in rows(database)] == [
        ("review_due", "email"), ("escalation_opened", "email"), ("escalation_opened", "email"),
        ("escalation_opened", "webhook"),
    ]  # fmt: skip
    report = dispatch(database, settings, NOW)
    assert (report.sent, report.failed) == (4, 0)
    subjects = [" ".join(str(m["Subject"]).split()) for m in inbox.messages()]  # unfolded
    assert subjects == [
        "[pulsecheck] Reminder 1: review #4 for Acme is due 2026-11-26 17:30 CET",
        "[pulsecheck] HIGH escalation #7: Acme",
        "[pulsecheck] CRITICAL escalation #8: Acme",
    ]
    (post,) = receiver.requests
    assert post["json"]["subject"] == "[pulsecheck] CRITICAL escalation #8: Acme"
    assert "Ack before: 2026-11-26 17:30 CET" in post["json"]["text"]


def test_without_routes_everything_goes_to_the_one_channel(
    tmp_path: Path, database: Database, factory: Factory, smtp: tuple[Inbox, int], receiver: Receiver
) -> None:
    factory.team()
    _, port = smtp
    settings = configure(tmp_path, database, channels_toml(port, receiver).replace('"log"', '"email"'))
    notify(database, settings, "review_due", {"review_id": 4, "due_at": DUE, "reminder": 1}, "due:4:1")
    notify(database, settings, "escalation_opened", escalation("critical", 8), "escalation:8:0")
    assert [r.channel for r in rows(database)] == ["email", "email"]


def test_an_email_fixed_after_queueing_is_used_when_the_message_is_retried(
    tmp_path: Path, database: Database, factory: Factory, smtp: tuple[Inbox, int], receiver: Receiver
) -> None:
    factory.user("dana", "reviewer")  # no email yet
    factory.account("ACME", owner="dana")
    inbox, port = smtp
    settings = configure(tmp_path, database, channels_toml(port, receiver, routes=ROUTES))
    notify(database, settings, "review_due", {"review_id": 4, "due_at": DUE, "reminder": 1}, "due:4:1")
    assert dispatch(database, settings, NOW).failed == 1
    assert "dana has no email address" in (rows(database)[0].last_error or "")
    with database.transaction() as session:
        add_user(session, "dana", [], NOW, email="dana@example.com")
        retry_notification(session, rows(database)[0].id, NOW)
    assert dispatch(database, settings, NOW).sent == 1
    assert [m["To"] for m in inbox.messages()] == ["dana <dana@example.com>"]


def test_calls_to_action_are_links_under_base_url(
    tmp_path: Path, database: Database, factory: Factory, smtp: tuple[Inbox, int], receiver: Receiver
) -> None:
    factory.team()
    inbox, port = smtp
    toml = channels_toml(port, receiver, routes=ROUTES).replace("[notifications.routes]", "[web]\nbase_url = "
                                                               '"https://pulse.example.com/"\n[notifications.routes]')
    settings = configure(tmp_path, database, toml)
    notify(database, settings, "review_due", {"review_id": 4, "due_at": DUE, "reminder": 1}, "due:4:1")
    notify(database, settings, "escalation_opened", escalation("critical", 8), "escalation:8:0")
    dispatch(database, settings, NOW)
    reminder, opened = (m.get_content().replace("\r\n", "\n") for m in inbox.messages())
    assert "Open it:    https://pulse.example.com/reviews/4\n" in reminder
    assert "pulsecheck review" not in reminder
    assert "Acknowledge it:        https://pulse.example.com/escalations?ack=8\n" in opened
    (post,) = receiver.requests
    section = post["json"]["blocks"][1]
    assert section["text"]["type"] == "mrkdwn"
    assert "<https://pulse.example.com/escalations?ack=8|Acknowledge it>" in section["text"]["text"]


def test_webhook_mentions_the_person_by_chat_handle_read_at_send_time(
    tmp_path: Path, database: Database, factory: Factory, smtp: tuple[Inbox, int], receiver: Receiver
) -> None:
    factory.team()
    _, port = smtp
    settings = configure(tmp_path, database, channels_toml(port, receiver, routes='escalation = ["webhook"]\n'))
    notify(database, settings, "escalation_opened", escalation("high", 7), "escalation:7:0")
    with database.transaction() as session:
        add_user(session, "bob", [], NOW, chat="@U024BE7LH")
        assert session.scalar(select(User.chat_handle).where(User.name == "bob")) == "U024BE7LH"
    dispatch(database, settings, NOW)
    (post,) = receiver.requests
    assert post["json"]["blocks"][1]["text"]["text"].startswith("<@U024BE7LH> Hello bob,")
    assert "\n\n<@U024BE7LH> Hello bob," in post["json"]["text"]


# --- the alert budget and digests -------------------------------------------------------------------------


def reminder(database: Database, settings: Settings, number: int) -> None:
    context = {"review_id": number, "due_at": DUE, "reminder": 1}
    notify(database, settings, "review_due", context, f"due:{number}:1")


def test_beyond_the_budget_messages_wait_for_one_digest(
    tmp_path: Path, database: Database, factory: Factory, smtp: tuple[Inbox, int], receiver: Receiver
) -> None:
    factory.team()
    inbox, port = smtp
    toml = channels_toml(port, receiver, extra='budget = 2\ndigest_at = "17:00"', routes=ROUTES)
    settings = configure(tmp_path, database, toml.replace('timezone = "Europe/Berlin"', 'timezone = "UTC"'))
    for number in (1, 2, 3, 4):
        reminder(database, settings, number)
    morning = dispatch(database, settings, NOW)  # 09:00 UTC
    assert (morning.sent, morning.held, morning.digests) == (2, 2, 0)
    assert [r.status for r in rows(database)] == ["sent", "sent", "held", "held"]
    assert dispatch(database, settings, NOW.replace(hour=16, minute=59)).sent == 0  # not digest time yet
    evening = dispatch(database, settings, NOW.replace(hour=17))
    assert (evening.sent, evening.held, evening.digests) == (1, 0, 1)
    digest = inbox.messages()[-1]
    assert len(inbox.messages()) == 3 and digest["To"] == "bob <bob@example.com>"
    assert str(digest["Subject"]) == "[pulsecheck] Digest 2026-11-24: 2 notifications"
    text = digest.get_content()
    assert "- [pulsecheck] Reminder 1: review #3 for Acme is due 2026-11-26 16:30 UTC" in text
    assert "- [pulsecheck] Reminder 1: review #4 for Acme is due 2026-11-26 16:30 UTC" in text
    assert "#1 " not in text and "#2 " not in text
    assert [r.status for r in rows(database)] == ["sent", "sent", "digested", "digested", "sent"]
    later = dispatch(database, settings, NOW.replace(hour=18))
    assert (later.sent, later.digests) == (0, 0) and len(inbox.messages()) == 3


def test_a_daily_digest_user_gets_critical_messages_at_once_and_the_rest_in_the_digest(
    tmp_path: Path, database: Database, factory: Factory, smtp: tuple[Inbox, int], receiver: Receiver
) -> None:
    factory.team()
    with database.transaction() as session:
        add_user(session, "bob", [], NOW, digest="daily", chat="U024BE7LH")
    _, port = smtp
    settings = configure(tmp_path, database, channels_toml(port, receiver, routes='escalation = ["webhook"]\n'))
    notify(database, settings, "escalation_opened", escalation("high", 7), "escalation:7:0")
    notify(database, settings, "escalation_opened", escalation("critical", 8), "escalation:8:0")
    notify(database, settings, "escalation_opened", escalation("medium", 9), "escalation:9:0")
    first = dispatch(database, settings, NOW)  # 10:00 in Berlin
    assert (first.sent, first.held) == (1, 2)
    assert [p["json"]["subject"] for p in receiver.requests] == ["[pulsecheck] CRITICAL escalation #8: Acme"]
    dispatch(database, settings, NOW.replace(hour=16))  # 17:00 in Berlin: the default digest time
    digest = receiver.requests[-1]["json"]
    assert digest["subject"] == "[pulsecheck] Digest 2026-11-24: 2 notifications"
    assert digest["text"].splitlines()[2] == "<@U024BE7LH> Hello bob,"
    assert "  - [pulsecheck] HIGH escalation #7: Acme\n  - [pulsecheck] MEDIUM escalation #9: Acme\n" in digest["text"]


def test_messages_for_several_people_to_the_channel_url_go_in_one_post(
    tmp_path: Path, database: Database, factory: Factory, smtp: tuple[Inbox, int], receiver: Receiver
) -> None:
    factory.team()  # ACME: owner bob, manager maria; olga (ops) has her own webhook
    with database.transaction() as session:
        add_user(session, "olga", [], NOW, webhook=f"{receiver.url}/olga")
        account = session.scalar(select(Account).where(Account.external_id == "ACME"))
        assert account is not None
        settings = configure(tmp_path, database, channels_toml(smtp[1], receiver, routes='escalation = ["webhook"]\n'))
        Routing.from_settings(settings).notify(
            session, "escalation_opened", ["owner", "manager", "ops"], account, None, escalation("high", 7),
            "escalation:7:0", NOW,
        )  # fmt: skip
    report = dispatch(database, settings, NOW)
    assert (report.sent, report.channels["webhook"].sent) == (3, 3)
    assert sorted(r["path"] for r in receiver.requests) == ["/hook", "/olga"]
    (shared,) = [r["json"] for r in receiver.requests if r["path"] == "/hook"]
    assert [m["recipient"]["name"] for m in shared["messages"]] == ["bob", "maria"]
    assert [b["type"] for b in shared["blocks"]] == ["header", "section", "divider", "header", "section"]
    assert "Hello bob," in shared["blocks"][1]["text"]["text"] and "Hello maria," in shared["blocks"][4]["text"]["text"]
    assert [r.status for r in rows(database)] == ["sent"] * 3
