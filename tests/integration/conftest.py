"""Fixtures for the integration tests: a real SMTP server (aiosmtpd), a real HTTP receiver on 127.0.0.1, outbox
helpers, and the sample portfolio with the example rules active (built once per session).

Test modules that need the classes or helpers themselves import them: `from tests.integration.conftest import Inbox`.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select

from pulsecheck.config import Settings, load_settings
from pulsecheck.demo import examples_dir
from pulsecheck.demo.story import DEMO_NOW, Demo
from pulsecheck.notifications.outbox import enqueue
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Escalation, Notification, User
from tests.conftest import NOW, Templates, activate_rules

PASSWORD = "pw-from-env-7731"  # the only password the `smtp_auth` server accepts (login "alerts")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- SMTP -------------------------------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler that keeps what it receives, or answers with a chosen error reply."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.logins: list[tuple[bytes, bytes]] = []
        self.rcpt_reply: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.logins.append((data.login, data.password))
        ok = data.login == b"alerts" and data.password == PASSWORD.encode()
        # handled=False: let aiosmtpd send the 535 reply itself
        return AuthResult(success=ok, handled=False, auth_data=data)

    def messages(self) -> list[email.message.EmailMessage]:
        """Every email received so far, parsed."""
        parsed = [email.message_from_bytes(e.content, policy=email.policy.default) for e in self.envelopes]
        assert all(isinstance(m, email.message.EmailMessage) for m in parsed)
        return parsed  # type: ignore[return-value]

    def received(self) -> email.message.EmailMessage:
        """The one email received (fails when there are none or several)."""
        assert len(self.envelopes) == 1
        return self.messages()[0]


def start_smtp(inbox: Inbox, **kwargs: Any) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), ready_timeout=5, **kwargs)
    controller.start()
    return controller


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A plain SMTP server: (inbox, port)."""
    inbox = Inbox()
    controller = start_smtp(inbox)
    yield inbox, controller.port
    controller.stop()


@pytest.fixture
def smtp_auth() -> Iterator[tuple[Inbox, int]]:
    """An SMTP server that requires login "alerts" with PASSWORD (no TLS): (inbox, port)."""
    inbox = Inbox()
    controller = start_smtp(inbox, authenticator=inbox.authenticate, auth_required=True, auth_require_tls=False)
    yield inbox, controller.port
    controller.stop()


# --- HTTP -------------------------------------------------------------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST and answers with a chosen status.

    `statuses` is a queue of answers for the next POSTs (e.g. [500, 503]); once empty, `status` applies.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.statuses: list[int] = []
        self.reply = b"ok"
        self.headers: dict[str, str] = {}
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                receiver.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": json.loads(self.rfile.read(length)),
                    }
                )
                status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
                time.sleep(receiver.delay)
                try:
                    self.send_response(status)
                    for name, value in receiver.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(receiver.reply)))
                    self.end_headers()
                    self.wfile.write(receiver.reply)
                except BrokenPipeError:  # the client timed out and left, as the test wanted
                    pass

            def do_GET(self) -> None:  # noqa: N802
                receiver.requests.append({"path": self.path, "method": "GET"})
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # a deliberately slow handler must not hold up teardown
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def posted(self) -> list[dict[str, Any]]:
        """The JSON bodies of every POST so far."""
        return [r["json"] for r in self.requests if "json" in r]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running HTTP receiver; `receiver.url` is its base URL."""
    server = Receiver()
    yield server
    server.close()


# --- the outbox -----------------------------------------------------------------------------------------

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



# What the example rules escalate on the sample portfolio at DEMO_NOW, read off the sample files (not the engine):
SAMPLE_ESCALATIONS = {
    ("ACME", "drop-with-complaints"),  # 16.79 points down in 30 days, complaints CS-1042 and CS-1077 open
    # renewal within 90 days and NPS below zero (surveys.csv, 90 days): INITECH -100, SOYLENT -100, STARK -83.3,
    # WONKA -33.3; ACME renews in 47 days too but its NPS is +33.3
    ("INITECH", "renewal-detractors"), ("SOYLENT", "renewal-detractors"), ("STARK", "renewal-detractors"),
    ("WONKA", "renewal-detractors"),
    # three low scores in a row: the three accounts in the lowest bucket
    ("CYBERDYNE", "three-low-in-a-row"), ("INITECH", "three-low-in-a-row"), ("SOYLENT", "three-low-in-a-row"),
    ("SOYLENT", "high-severity-tickets"),  # TK-9001, TK-9002, TK-9003: three open high or critical tickets
    # logins (readings.csv): 410 on 2026-10-20 (the newest at or before 30 days ago), 205 on 2026-11-24: -50%
    ("ACME", "logins-drop"),
}


def escalated(database: Database) -> set[tuple[str, str]]:
    """(account, rule) of every escalation in the database."""
    with database.transaction() as session:
        return {(e.account.external_id, e.rule_id) for e in session.scalars(select(Escalation))}


def seed_rules_portfolio(database: Database) -> None:
    """The demo's sample portfolio (users, accounts, inputs, 12 weeks of scores) with the example rules active."""
    demo = Demo(database, DEMO_NOW, lambda line: None, load_settings(env={}))
    demo.setup()
    demo.scoring("scoring.yaml")  # the flat model the escalations above are read off (the demo's is scorecard.yaml)
    activate_rules(database, examples_dir() / "rules.yaml", "olga", DEMO_NOW)


@pytest.fixture
def rules_portfolio(tmp_path: Path, templates: Templates) -> Iterator[Database]:
    """The demo's sample portfolio (users, accounts, inputs, 12 weeks of scores), with the example rules active."""
    database = templates.copy(templates.seeded("rules_portfolio", seed_rules_portfolio), tmp_path / "portfolio.db")
    yield database
    database.dispose()
