"""Delivery channels against real receivers: an SMTP server, an HTTP server, a file, the log."""

from __future__ import annotations

import email
import json
import logging
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pulsecheck.errors import InputError
from pulsecheck.notifications.channels import CHANNEL_NAMES, Channel, DeliveryError, build_channel
from pulsecheck.notifications.message import Message
from tests.integration.conftest import PASSWORD, Inbox, Receiver, free_port, start_smtp

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

TOKEN = "tok-from-env-5120"


def make_message(**changes: Any) -> Message:
    fields: dict[str, Any] = {
        "kind": "review_submitted",
        "recipient_name": "Sam Lee",
        "recipient_email": "sam@example.com",
        "recipient_webhook": None,
        "subject": "[pulsecheck] Review #12 for Acme Corp awaits your approval",
        "body": "Hello Sam,\n\nmaria submitted review #12.\n\nRead it:  pulsecheck review show 12\n",
        "dedupe_key": "review:12:submitted:sam",
        "context": {
            "review_id": 12,
            "account_name": "Acme Corp",
            "due_at": datetime(2026, 3, 14, tzinfo=UTC),
        },
    }
    fields.update(changes)
    return Message(**fields)


def email_settings(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "from": "Pulsecheck <pulsecheck@example.com>",
        "timeout": 5,
        **extra,
    }


def test_email_is_delivered_to_the_recipient(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    channel = build_channel("email", email_settings(port), env={})
    channel.send(make_message())
    mail = inbox.received()
    assert inbox.envelopes[0].rcpt_tos == ["sam@example.com"]
    assert inbox.envelopes[0].mail_from == "pulsecheck@example.com"
    assert mail["To"] == "Sam Lee <sam@example.com>"
    assert mail["Subject"] == "[pulsecheck] Review #12 for Acme Corp awaits your approval"
    body = mail.get_content()
    assert "maria submitted review #12." in body
    assert "pulsecheck review show 12" in body
    assert mail["X-Pulsecheck-Dedupe-Key"] == "review:12:submitted:sam"


def test_email_keeps_non_ascii_names_and_text(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    message = make_message(
        recipient_name="Zoë Müller", subject="[pulsecheck] Überprüfung #12 — Acme", body="Grüße ✓\n"
    )
    build_channel("email", email_settings(port), env={}).send(message)
    mail = inbox.received()
    assert mail["To"] == "Zoë Müller <sam@example.com>"
    assert mail["Subject"] == "[pulsecheck] Überprüfung #12 — Acme"
    assert mail.get_content().strip() == "Grüße ✓"


def test_email_line_break_in_subject_is_refused_not_injected(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    with pytest.raises(DeliveryError, match="linefeed") as info:
        build_channel("email", email_settings(port), env={}).send(
            make_message(subject="Hi\nBcc: x@evil.test")
        )
    assert info.value.retryable is False and inbox.envelopes == []


def test_email_retry_reuses_the_message_id(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    channel = build_channel("email", email_settings(port), env={})
    channel.send(make_message())
    channel.send(make_message())
    ids = [email.message_from_bytes(e.content)["Message-ID"] for e in inbox.envelopes]
    assert ids[0] == ids[1] and ids[0].endswith("@example.com>")


def test_email_login_uses_the_password_from_env(smtp_auth: tuple[Inbox, int]) -> None:
    inbox, port = smtp_auth
    settings = email_settings(port, username="alerts", password_env="SMTP_PASSWORD")
    channel = build_channel("email", settings, env={"SMTP_PASSWORD": PASSWORD})
    channel.send(make_message())
    assert inbox.logins == [(b"alerts", PASSWORD.encode())]
    assert inbox.received()["Subject"].startswith("[pulsecheck] Review #12")
    assert PASSWORD not in repr(channel)


def test_email_wrong_password_is_permanent_and_not_echoed(smtp_auth: tuple[Inbox, int]) -> None:
    inbox, port = smtp_auth
    settings = email_settings(port, username="alerts", password_env="SMTP_PASSWORD")
    channel = build_channel("email", settings, env={"SMTP_PASSWORD": "wrong-secret-4242"})
    with pytest.raises(DeliveryError) as info:
        channel.send(make_message())
    assert info.value.retryable is False
    assert "535" in str(info.value)
    assert "wrong-secret-4242" not in str(info.value)
    assert inbox.envelopes == []


def test_email_without_login_is_refused_by_a_server_that_requires_it(smtp_auth: tuple[Inbox, int]) -> None:
    _, port = smtp_auth
    with pytest.raises(DeliveryError) as info:
        build_channel("email", email_settings(port), env={}).send(make_message())
    assert info.value.retryable is False
    assert "530" in str(info.value)


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [("450 4.2.1 Mailbox busy, try later", True), ("550 5.1.1 No such user here", False)],
)
def test_email_smtp_reply_decides_retry(smtp: tuple[Inbox, int], reply: str, retryable: bool) -> None:
    inbox, port = smtp
    inbox.rcpt_reply = reply
    with pytest.raises(DeliveryError) as info:
        build_channel("email", email_settings(port), env={}).send(make_message())
    assert info.value.retryable is retryable
    assert reply.split()[0] in str(info.value) and "sam@example.com" in str(info.value)


def test_email_server_down_is_retryable() -> None:
    channel = build_channel("email", email_settings(free_port()), env={})
    with pytest.raises(DeliveryError) as info:
        channel.send(make_message())
    assert info.value.retryable is True
    assert "cannot connect" in str(info.value)


def test_email_recipient_without_address_is_permanent() -> None:
    channel = build_channel("email", email_settings(free_port()), env={})
    with pytest.raises(DeliveryError, match="Sam Lee has no email address") as info:
        channel.send(make_message(recipient_email=None))
    assert info.value.retryable is False


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1".split()
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@pytest.fixture
def smtp_tls(certificate: tuple[Path, Path]) -> Iterator[tuple[Inbox, int, Path]]:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = start_smtp(
        inbox,
        tls_context=context,
        require_starttls=True,
        authenticator=inbox.authenticate,
        auth_required=True,
    )
    yield inbox, controller.port, cert
    controller.stop()


def test_email_starttls_then_login(smtp_tls: tuple[Inbox, int, Path]) -> None:
    inbox, port, cert = smtp_tls
    settings = email_settings(
        port, starttls=True, ca_file=str(cert), username="alerts", password_env="SMTP_PASSWORD"
    )
    build_channel("email", settings, env={"SMTP_PASSWORD": PASSWORD}).send(make_message())
    assert inbox.logins == [(b"alerts", PASSWORD.encode())]
    assert "pulsecheck review show 12" in inbox.received().get_content()


def test_email_untrusted_certificate_is_permanent(smtp_tls: tuple[Inbox, int, Path]) -> None:
    inbox, port, _ = smtp_tls
    settings = email_settings(port, starttls=True, username="alerts", password_env="SMTP_PASSWORD")
    with pytest.raises(DeliveryError, match="certificate") as info:
        build_channel("email", settings, env={"SMTP_PASSWORD": PASSWORD}).send(make_message())
    assert info.value.retryable is False
    assert inbox.logins == []


# --- webhook ----------------------------------------------------------------------------------------


def webhook(receiver: Receiver, **extra: Any) -> Channel:
    settings = {"url": f"{receiver.url}/hooks/T000/B000/secretpath", "timeout": 5, **extra}
    return build_channel("webhook", settings, env={"HOOK_TOKEN": TOKEN})


def test_webhook_posts_slack_compatible_json_with_bearer_token(receiver: Receiver) -> None:
    webhook(receiver, token_env="HOOK_TOKEN").send(make_message())
    (request,) = receiver.requests
    assert request["path"] == "/hooks/T000/B000/secretpath"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Content-Type"].startswith("application/json")
    body = request["json"]
    assert body["text"].startswith("[pulsecheck] Review #12 for Acme Corp awaits your approval\n\n")
    assert "pulsecheck review show 12" in body["text"]
    assert body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "[pulsecheck] Review #12 for Acme Corp awaits your approval"},
    }
    assert body["kind"] == "review_submitted"
    assert body["recipient"] == {"name": "Sam Lee", "email": "sam@example.com"}
    assert body["context"] == {
        "review_id": 12,
        "account_name": "Acme Corp",
        "due_at": "2026-03-14T00:00:00+00:00",
    }
    assert body["dedupe_key"] == request["headers"]["Idempotency-Key"] == "review:12:submitted:sam"


def test_webhook_without_token_sends_no_authorization(receiver: Receiver) -> None:
    webhook(receiver, blocks=False).send(make_message())
    (request,) = receiver.requests
    assert "Authorization" not in request["headers"]
    assert "blocks" not in request["json"] and request["json"]["text"]


def test_webhook_recipient_url_overrides_the_default(receiver: Receiver) -> None:
    webhook(receiver).send(make_message(recipient_webhook=f"{receiver.url}/people/sam"))
    assert [r["path"] for r in receiver.requests] == ["/people/sam"]


def test_webhook_recipient_handle_that_is_not_a_url_is_permanent(receiver: Receiver) -> None:
    with pytest.raises(DeliveryError, match="not an http") as info:
        webhook(receiver).send(make_message(recipient_webhook="@sam"))
    assert info.value.retryable is False and receiver.requests == []


@pytest.mark.parametrize(
    ("status", "reply", "retryable"),
    [
        (500, b"boom", True),
        (503, b"", True),
        (429, b"slow down", True),
        (400, b"invalid_payload", False),
        (404, b"no_service", False),
    ],
)
def test_webhook_http_status_decides_retry(
    receiver: Receiver, status: int, reply: bytes, retryable: bool
) -> None:
    receiver.status, receiver.reply = status, reply
    with pytest.raises(DeliveryError) as info:
        webhook(receiver, token_env="HOOK_TOKEN").send(make_message())
    text = str(info.value)
    assert info.value.retryable is retryable
    assert f"HTTP {status}" in text and reply.decode() in text
    assert TOKEN not in text and "secretpath" not in text  # Slack webhook paths are secrets too


def test_webhook_passes_on_retry_after(receiver: Receiver) -> None:
    receiver.status, receiver.headers = 429, {"Retry-After": "7"}
    with pytest.raises(DeliveryError) as info:
        webhook(receiver).send(make_message())
    assert info.value.retryable is True and info.value.retry_after == 7.0


def test_webhook_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.status, receiver.headers = 302, {"Location": f"{receiver.url}/elsewhere"}
    with pytest.raises(DeliveryError, match="redirect") as info:
        webhook(receiver).send(make_message())
    assert info.value.retryable is False
    assert len(receiver.requests) == 1  # no silent GET without the body


def test_webhook_connection_refused_is_retryable() -> None:
    channel = build_channel("webhook", {"url": f"http://127.0.0.1:{free_port()}/hook", "timeout": 2}, env={})
    with pytest.raises(DeliveryError, match="cannot connect") as info:
        channel.send(make_message())
    assert info.value.retryable is True


def test_webhook_timeout_is_retryable(receiver: Receiver) -> None:
    receiver.delay = 1.0
    with pytest.raises(DeliveryError, match="timed out") as info:
        webhook(receiver, timeout=0.2).send(make_message())
    assert info.value.retryable is True


def test_webhook_without_any_url_is_permanent() -> None:
    channel = build_channel("webhook", {}, env={})
    with pytest.raises(DeliveryError, match="no webhook") as info:
        channel.send(make_message())
    assert info.value.retryable is False


# --- file and log -----------------------------------------------------------------------------------


def test_file_channel_appends_one_json_line_per_message(tmp_path: Path) -> None:
    path = tmp_path / "spool" / "today" / "outbox.jsonl"
    channel = build_channel("file", {"path": str(path)}, env={})
    first, second = make_message(), make_message(dedupe_key="review:12:submitted:lee", recipient_name="Lee")
    channel.send(first)
    channel.send(second)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    records = [json.loads(line) for line in lines]
    assert [r["dedupe_key"] for r in records] == ["review:12:submitted:sam", "review:12:submitted:lee"]
    again = Message.from_dict(records[0])
    assert again.to_dict() == first.to_dict()
    assert again.context["due_at"] == "2026-03-14T00:00:00+00:00"


def test_file_channel_unwritable_path_is_retryable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    channel = build_channel("file", {"path": str(blocker / "outbox.jsonl")}, env={})
    with pytest.raises(DeliveryError, match="cannot append") as info:
        channel.send(make_message())
    assert info.value.retryable is True


def test_log_channel_logs_recipient_and_subject(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pulsecheck.notifications")
    build_channel("log", {}, env={}).send(make_message())
    (record,) = [r for r in caplog.records if r.name == "pulsecheck.notifications"]
    text = record.getMessage()
    assert "Sam Lee <sam@example.com>" in text
    assert "[pulsecheck] Review #12 for Acme Corp awaits your approval" in text
    assert "pulsecheck review show 12" in text


# --- choosing and configuring channels --------------------------------------------------------------


def test_unknown_channel_names_the_valid_ones() -> None:
    with pytest.raises(InputError) as info:
        build_channel("sms", {}, env={})
    assert "'sms'" in str(info.value)
    for name in ("email", "file", "log", "webhook"):
        assert name in str(info.value)
    assert set(CHANNEL_NAMES) == {"email", "file", "log", "webhook"}


def test_password_in_settings_is_refused_with_a_hint() -> None:
    with pytest.raises(InputError, match="unknown setting 'password'.*did you mean 'password_env'"):
        build_channel("email", {"host": "h", "from": "a@b.c", "username": "u", "password": "x"}, env={})


def test_missing_secret_names_the_variable_only() -> None:
    settings = {"host": "h", "from": "a@b.c", "username": "u", "password_env": "SMTP_PASSWORD"}
    with pytest.raises(InputError, match="'SMTP_PASSWORD', which is not set"):
        build_channel("email", settings, env={"OTHER": "x"})
    with pytest.raises(InputError, match="'HOOK_TOKEN', which is not set"):
        build_channel("webhook", {"url": "https://example.com/h", "token_env": "HOOK_TOKEN"}, env={})


@pytest.mark.parametrize(
    ("name", "settings", "fragment"),
    [
        ("email", {"from": "a@b.c"}, "'host' is required"),
        ("email", {"host": "h", "from": "not an address"}, "'from' must be an email address"),
        ("email", {"host": "h", "from": "a@b.c", "port": "25"}, "'port' must be a positive whole number"),
        ("file", {}, "'path' is required"),
        ("webhook", {"url": "ftp://example.com"}, "'url' must be an http"),
        ("webhook", {"url": "https://example.com", "timout": 3}, "did you mean 'timeout'"),
        ("log", {"level": "loud"}, "'level' must be one of"),
    ],
)
def test_bad_settings_are_input_errors(name: str, settings: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        build_channel(name, settings, env={})


def test_importing_channels_and_rendering_stays_light() -> None:
    code = (
        "import sys, pulsecheck.notifications.channels, pulsecheck.notifications.render;"
        "print(sorted(m for m in ('smtplib', 'jinja2', 'urllib.request') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "[]"
