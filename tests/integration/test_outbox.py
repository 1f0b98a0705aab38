"""The outbox dispatcher against real receivers: SMTP (aiosmtpd), an HTTP receiver, the JSONL file; retries,
backoff, bad settings, limits and a crash mid-pass. Dispatchers at once: test_dispatch_race.py."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pulsecheck.errors import InputError
from pulsecheck.notifications.channels.file import FileChannel
from pulsecheck.notifications.dispatch import dispatch
from pulsecheck.storage.db import Database
from tests.conftest import NOW, Factory
from tests.integration.conftest import PASSWORD, Inbox, Receiver, configure, free_port, queue, rows

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

@pytest.fixture
def team(factory: Factory) -> Factory:
    factory.user("maria", "manager", email="maria@example.com")
    factory.user("bob", "reviewer", manager="maria", email="bob@example.com")
    factory.user("olga", "ops", email="olga@example.com")
    return factory


# --- email --------------------------------------------------------------------------------------------


def email_toml(port: int, login: bool = True) -> str:
    auth = 'username = "alerts"\npassword_env = "SMTP_PASSWORD"\n' if login else ""
    return (
        f'[notifications.email]\nhost = "127.0.0.1"\nport = {port}\nfrom = "Pulsecheck <pc@example.com>"\n'
        f"timeout = 5\n{auth}"
    )


def test_email_is_sent_through_smtp_with_login_from_env(
    tmp_path: Path, database: Database, team: Factory, smtp_auth: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_auth
    settings = configure(tmp_path, database, email_toml(port), env={"SMTP_PASSWORD": PASSWORD})
    queue(database, "email", "maria", "olga")
    report = dispatch(database, settings, NOW)
    assert (report.sent, report.retried, report.failed) == (2, 0, 0)
    assert [m["To"] for m in inbox.messages()] == ["maria <maria@example.com>", "olga <olga@example.com>"]
    mail = inbox.messages()[0]
    assert mail["Subject"] == "[pulsecheck] Review #12 for Acme Corp awaits your approval"
    assert "pulsecheck review show 12" in mail.get_content()
    assert inbox.logins == [(b"alerts", PASSWORD.encode())] * 2
    assert [(r.status, r.attempts, r.sent_at) for r in rows(database)] == [("sent", 1, NOW), ("sent", 1, NOW)]
    assert dispatch(database, settings, NOW + timedelta(days=1)).sent == 0  # never sent twice
    assert len(inbox.envelopes) == 2


def test_smtp_password_never_reaches_the_database_or_the_cli(
    tmp_path: Path,
    db_url: str,
    database: Database,
    team: Factory,
    smtp_auth: tuple[Inbox, int],
    run: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp_auth
    config = tmp_path / "pulsecheck.toml"
    config.write_text(email_toml(port), encoding="utf-8")
    queue(database, "email", "maria")
    monkeypatch.setenv("SMTP_PASSWORD", "wrong-" + PASSWORD)  # refused: the error must not echo it
    refused = run("--config", str(config), "outbox", "dispatch")
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    queue(database, "email", "olga")
    sent = run("--config", str(config), "outbox", "dispatch", "--json")
    listed = run("--config", str(config), "outbox", "list", "--json")
    assert "535" in refused.output and "login refused" in refused.output
    assert json.loads(sent.stdout)["sent"] == 1 and len(inbox.envelopes) == 1
    for result in (refused, sent, listed):
        assert result.exit_code == 0 and PASSWORD not in result.output
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("pulsecheck.db*"))
    assert b"SMTP_PASSWORD" not in stored and PASSWORD.encode() not in stored


# --- webhook: retries, backoff, permanent failures ------------------------------------------------------


def webhook_toml(url: str, extra: str = "", base: str = "1m", cap: str = "1h") -> str:
    return (
        f'[notifications]\nretry_base = "{base}"\nretry_max = "{cap}"\n{extra}\n'
        f'[notifications.webhook]\nurl = "{url}"\ntimeout = 5\n'
    )


def test_receiver_failing_twice_gets_the_message_once_on_the_third_pass(
    tmp_path: Path, database: Database, team: Factory, receiver: Receiver
) -> None:
    settings = configure(tmp_path, database, webhook_toml(f"{receiver.url}/hook"))
    queue(database, "webhook", "maria")
    receiver.statuses = [500, 503]

    first = dispatch(database, settings, NOW)
    assert (first.sent, first.retried, first.failed) == (0, 1, 0)
    (row,) = rows(database)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, NOW + timedelta(minutes=1))
    assert "HTTP 500" in (row.last_error or "")

    assert dispatch(database, settings, NOW + timedelta(seconds=59)).retried == 0  # backoff not over yet
    assert len(receiver.requests) == 1

    second = dispatch(database, settings, NOW + timedelta(minutes=1))
    assert second.retried == 1 and second.problems[0].error.startswith("webhook http://127.0.0.1")
    (row,) = rows(database)
    assert (row.attempts, row.next_attempt_at) == (2, NOW + timedelta(minutes=3))  # 1m, then 2m

    third = dispatch(database, settings, NOW + timedelta(minutes=3))
    assert (third.sent, third.channels["webhook"].sent) == (1, 1)
    (row,) = rows(database)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 3, NOW + timedelta(minutes=3))
    assert len(receiver.requests) == 3  # 500, 503, then the one that was accepted
    assert {r["headers"]["Idempotency-Key"] for r in receiver.requests} == {row.dedupe_key}
    assert dispatch(database, settings, NOW + timedelta(days=1)).sent == 0
    assert len(receiver.requests) == 3


def test_retry_after_from_the_receiver_is_honoured(
    tmp_path: Path, database: Database, team: Factory, receiver: Receiver
) -> None:
    settings = configure(tmp_path, database, webhook_toml(f"{receiver.url}/hook"))
    queue(database, "webhook", "maria")
    receiver.statuses, receiver.headers = [429], {"Retry-After": "600"}
    dispatch(database, settings, NOW)
    (row,) = rows(database)
    assert row.next_attempt_at == NOW + timedelta(minutes=10)  # not the 1m of the backoff
    assert dispatch(database, settings, NOW + timedelta(minutes=9)).sent == 0
    assert dispatch(database, settings, NOW + timedelta(minutes=10)).sent == 1


def test_a_channel_that_keeps_failing_is_given_up_after_max_attempts(
    tmp_path: Path, database: Database, team: Factory, receiver: Receiver, run: Any
) -> None:
    settings = configure(tmp_path, database, webhook_toml(f"{receiver.url}/hook", "max_attempts = 3"))
    queue(database, "webhook", "maria")
    receiver.status = 503
    now = NOW
    outcomes = []
    for _ in range(5):
        report = dispatch(database, settings, now)
        outcomes.append((report.retried, report.failed))
        now += timedelta(hours=2)  # past any backoff
    assert outcomes == [(1, 0), (1, 0), (0, 1), (0, 0), (0, 0)]
    assert len(receiver.requests) == 3
    (row,) = rows(database)
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.last_error is not None and row.last_error.startswith("gave up after 3 attempts: webhook")

    listed = run("--config", str(tmp_path / "pulsecheck.toml"), "outbox", "list", "--failed", "--json")
    assert [(n["id"], n["status"], n["attempts"]) for n in json.loads(listed.output)["items"]] == [
        (row.id, "failed", 3)]


@pytest.mark.parametrize(("status", "text"), [(400, "HTTP 400"), (404, "HTTP 404")])
def test_a_4xx_answer_fails_at_once(
    tmp_path: Path, database: Database, team: Factory, receiver: Receiver, status: int, text: str
) -> None:
    settings = configure(tmp_path, database, webhook_toml(f"{receiver.url}/hook"))
    queue(database, "webhook", "maria")
    receiver.status, receiver.reply = status, b"invalid_payload"
    report = dispatch(database, settings, NOW)
    assert (report.sent, report.retried, report.failed) == (0, 0, 1)
    (row,) = rows(database)
    assert (row.status, row.attempts) == ("failed", 1)
    assert text in (row.last_error or "") and "invalid_payload" in (row.last_error or "")
    assert dispatch(database, settings, NOW + timedelta(days=1)).failed == 0
    assert len(receiver.requests) == 1


def test_unreachable_receiver_is_retried_with_growing_waits(
    tmp_path: Path, database: Database, team: Factory
) -> None:
    settings = configure(tmp_path, database, webhook_toml(f"http://127.0.0.1:{free_port()}/hook", cap="5m"))
    queue(database, "webhook", "maria")
    now, waits = NOW, []
    for _ in range(4):
        dispatch(database, settings, now)
        (row,) = rows(database)
        waits.append(row.next_attempt_at - now)
        now = row.next_attempt_at
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 5)]  # doubling, capped at retry_max
    assert "cannot connect" in (row.last_error or "")


# --- file channel, bad channels, limits, crashes --------------------------------------------------------


def test_file_channel_gets_one_json_line_per_notification(
    tmp_path: Path, database: Database, team: Factory
) -> None:
    path = tmp_path / "spool" / "outbox.jsonl"
    settings = configure(tmp_path, database, f'[notifications.file]\npath = "{path}"\n')
    queue(database, "file", "maria", "bob", "olga")
    queue(database, "file", "maria", "bob", "olga")  # the same event again: deduplicated on enqueue
    assert dispatch(database, settings, NOW).sent == 3
    assert dispatch(database, settings, NOW).sent == 0
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["recipient_name"] for r in records] == ["maria", "bob", "olga"]
    assert [r["dedupe_key"] for r in records] == [f"review:12:submitted:{n}:file" for n in ("maria", "bob", "olga")]
    assert records[0]["recipient_email"] == "maria@example.com"
    assert records[0]["subject"] == "[pulsecheck] Review #12 for Acme Corp awaits your approval"
    assert records[0]["context"]["review_id"] == 12


def test_a_channel_with_bad_settings_fails_its_rows_and_the_others_go_out(
    tmp_path: Path, database: Database, team: Factory
) -> None:
    path = tmp_path / "outbox.jsonl"
    toml = f'[notifications.file]\npath = "{path}"\n[notifications.email]\nfrom = "pc@example.com"\n'
    settings = configure(tmp_path, database, toml)
    queue(database, "email", "maria", "bob")
    queue(database, "file", "maria")
    queue(database, "sms", "olga")
    report = dispatch(database, settings, NOW)
    assert report.to_dict()["channels"] == {
        "email": {"sent": 0, "retried": 0, "failed": 2},
        "file": {"sent": 1, "retried": 0, "failed": 0},
        "sms": {"sent": 0, "retried": 0, "failed": 1},
    }
    errors = {r.channel: r.last_error for r in rows(database) if r.status == "failed"}
    assert errors["email"] == "channel 'email': setting 'host' is required"
    assert errors["sms"] is not None and "unknown notification channel 'sms'" in errors["sms"]
    assert len(path.read_text().splitlines()) == 1


def test_limit_sends_the_oldest_first(tmp_path: Path, database: Database, team: Factory) -> None:
    path = tmp_path / "outbox.jsonl"
    settings = configure(tmp_path, database, f'[notifications.file]\npath = "{path}"\n')
    queue(database, "file", "maria", "bob", "olga")
    assert dispatch(database, settings, NOW, limit=2).sent == 2
    assert [r.status for r in rows(database)] == ["sent", "sent", "pending"]
    assert dispatch(database, settings, NOW, limit=2).sent == 1


def test_a_row_is_not_due_before_its_time(tmp_path: Path, database: Database, team: Factory) -> None:
    path = tmp_path / "outbox.jsonl"
    settings = configure(tmp_path, database, f'[notifications.file]\npath = "{path}"\n')
    queue(database, "file", "maria")
    assert dispatch(database, settings, NOW - timedelta(seconds=1)).sent == 0
    assert not path.exists()


def test_a_crash_mid_pass_keeps_what_was_sent_and_loses_nothing(
    tmp_path: Path, database: Database, team: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "outbox.jsonl"
    settings = configure(tmp_path, database, f'[notifications.file]\npath = "{path}"\n')
    for event in range(5):
        queue(database, "file", "maria", event=f"event:{event}")
    real_send = FileChannel.send
    calls: list[str] = []

    def dies_on_the_third(self: FileChannel, message: Any) -> None:
        calls.append(message.dedupe_key)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process is stopped while sending
        real_send(self, message)

    monkeypatch.setattr(FileChannel, "send", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        dispatch(database, settings, NOW)
    assert [(r.status, r.attempts) for r in rows(database)] == [("sent", 1)] * 2 + [("pending", 0)] * 3
    monkeypatch.setattr(FileChannel, "send", real_send)
    assert dispatch(database, settings, NOW).sent == 3
    keys = [json.loads(line)["dedupe_key"] for line in path.read_text().splitlines()]
    assert keys == [f"event:{i}:maria:file" for i in range(5)]


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ('retry_base = "soon"', r"\[notifications\] retry_base: expected a duration"),
        ("max_attempts = 0", r"\[notifications\] max_attempts: must be at least 1"),
        ('retry_base = "2h"\nretry_max = "1h"', r"\[notifications\]: retry_max must not be shorter"),
    ],
)
def test_bad_retry_settings_name_the_setting(tmp_path: Path, database: Database, toml: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):  # when the settings are loaded, before any dispatch
        configure(tmp_path, database, f"[notifications]\n{toml}\n")
