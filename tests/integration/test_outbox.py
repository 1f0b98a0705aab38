"""The outbox dispatcher against real receivers: SMTP (aiosmtpd), an HTTP receiver, the JSONL file, and two
dispatcher processes at once on PostgreSQL and SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pulsecheck.config import Settings, load_settings
from pulsecheck.errors import InputError
from pulsecheck.notifications.channels.file import FileChannel
from pulsecheck.notifications.dispatch import LEASE, dispatch
from pulsecheck.notifications.outbox import enqueue
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Notification, User
from tests.conftest import NOW, Factory
from tests.integration.conftest import PASSWORD, Inbox, Receiver, free_port

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

CONTEXT = {"account_name": "Acme Corp", "account_id": "ACME", "review_id": 12, "actor": "bob"}


def configure(tmp_path: Path, database: Database, toml: str, env: dict[str, str] | None = None) -> Settings:
    """Settings read from a real pulsecheck.toml (written from `toml`) and the given environment."""
    path = tmp_path / "pulsecheck.toml"
    path.write_text(toml, encoding="utf-8")
    return load_settings(db=database.url, config=str(path), user="bob", env=env or {})


def queue(database: Database, channel: str, *names: str, event: str = "review:12:submitted") -> None:
    """A `review_submitted` notification for each named user, written as the workflow writes them."""
    with database.transaction() as session:
        users = [session.scalar(select(User).where(User.name == n)) for n in names]
        enqueue(session, "review_submitted", CONTEXT, [u for u in users if u], event, channel, NOW)


def rows(database: Database) -> list[Notification]:
    with database.transaction() as session:
        return list(session.scalars(select(Notification).order_by(Notification.id)))


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
    assert [(n["id"], n["status"], n["attempts"]) for n in json.loads(listed.output)] == [(row.id, "failed", 3)]


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


# --- two dispatchers at once ----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_database(request: pytest.FixtureRequest) -> Database:
    """The test database of each kind (PostgreSQL skips when unreachable)."""
    name = "database" if request.param == "sqlite" else "pg_database"
    database: Database = request.getfixturevalue(name)
    return database


def test_two_dispatcher_processes_deliver_each_notification_once(
    tmp_path: Path, shared_database: Database, now: datetime
) -> None:
    database = shared_database
    Factory(database, now).user("maria", "manager", email="maria@example.com")
    count = 200
    with database.transaction() as session:
        maria = session.scalar(select(User).where(User.name == "maria"))
        assert maria is not None
        for event in range(count):
            enqueue(session, "review_submitted", CONTEXT, [maria], f"event:{event}", "file", NOW)
    path = tmp_path / "outbox.jsonl"
    config = tmp_path / "pulsecheck.toml"
    config.write_text(f'[notifications.file]\npath = "{path}"\n', encoding="utf-8")
    script = Path(sys.executable).parent / "pulsecheck"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSECHECK_")}
    env["PULSECHECK_NOW"] = NOW.isoformat()
    command = [str(script), "--db", database.url, "--config", str(config), "outbox", "dispatch", "--json"]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in processes]
    for process, (_, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err
    reports = [json.loads(out) for out, _ in results]
    assert sum(r["sent"] for r in reports) == count
    assert all(r["retried"] == r["failed"] == 0 for r in reports)
    keys = [json.loads(line)["dedupe_key"] for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(keys) == count and len(set(keys)) == count
    assert {(r.status, r.attempts) for r in rows(database)} == {("sent", 1)}


KILLED_MID_SEND = """
import os, sys
from datetime import datetime
from pulsecheck.config import load_settings
from pulsecheck.notifications.channels.file import FileChannel
from pulsecheck.notifications.dispatch import dispatch
from pulsecheck.storage.db import Database

real_send, calls = FileChannel.send, []

def send(self, message):
    calls.append(message)
    if len(calls) == 3:
        os._exit(9)  # killed while sending the third: no cleanup of any kind
    real_send(self, message)

FileChannel.send = send
url, config, now = sys.argv[1:]
dispatch(Database(url), load_settings(db=url, config=config, env={}), datetime.fromisoformat(now))
"""


def test_a_dispatcher_killed_mid_send_loses_nothing(tmp_path: Path, shared_database: Database, now: datetime) -> None:
    database = shared_database
    Factory(database, now).user("maria", "manager", email="maria@example.com")
    for event in range(5):
        queue(database, "file", "maria", event=f"event:{event}")
    path = tmp_path / "outbox.jsonl"
    config = tmp_path / "pulsecheck.toml"
    config.write_text(f'[notifications.file]\npath = "{path}"\n', encoding="utf-8")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_SEND, database.url, str(config), NOW.isoformat()],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert killed.returncode == 9, killed.stderr
    statuses = [(r.status, r.attempts) for r in rows(database)]
    settings = load_settings(db=database.url, config=str(config), env={})
    if database.engine.dialect.name == "sqlite":
        # the claim counted the attempt; the row is due again when its lease runs out
        assert statuses == [("sent", 1), ("sent", 1), ("pending", 1), ("pending", 0), ("pending", 0)]
        assert dispatch(database, settings, NOW).sent == 2
        assert dispatch(database, settings, NOW + LEASE).sent == 1
    else:
        # the transaction died with the process: the row is due again at once
        assert statuses == [("sent", 1), ("sent", 1), ("pending", 0), ("pending", 0), ("pending", 0)]
        assert dispatch(database, settings, NOW).sent == 3
    keys = sorted(json.loads(line)["dedupe_key"] for line in path.read_text().splitlines())
    assert keys == [f"event:{i}:maria:file" for i in range(5)]
