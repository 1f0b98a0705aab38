"""The `email` channel: one plain-text email per message over SMTP (smtplib), optionally with STARTTLS.

Settings: `host` (required), `port` (25), `from` (required), `starttls` (false), `ca_file` (extra CA
bundle to trust for STARTTLS), `username`, `password_env` (the NAME of the environment variable that
holds the password), `timeout` (seconds, 10). The password never appears in settings, logs or errors.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from pathlib import Path
from typing import Any

from pulsecheck.errors import InputError
from pulsecheck.notifications.channels.base import ChannelSettings, DeliveryError, scrub
from pulsecheck.notifications.message import Message


class EmailChannel:
    """Sends each message to `message.recipient_email`; SMTP 5xx replies are permanent, the rest retryable."""

    name = "email"

    def __init__(
        self,
        host: str,
        sender: str,
        *,
        port: int = 25,
        starttls: bool = False,
        ca_file: Path | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.starttls = starttls
        self.ca_file = ca_file
        self.username = username
        self._password = password
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"EmailChannel(host={self.host!r}, port={self.port}, sender={self.sender!r})"

    def send(self, message: Message) -> None:
        """Deliver `message` by SMTP, or raise DeliveryError saying what the server or network did."""
        if not message.recipient_email:
            raise DeliveryError(f"email: {message.recipient_name or 'recipient'} has no email address", retryable=False)
        where = f"email to {message.recipient_email} via {self.host}:{self.port}"
        try:
            mail = self._compose(message, message.recipient_email)
        except ValueError as exc:  # e.g. a line break in a header value
            raise DeliveryError(f"{where}: cannot build the email: {exc}", retryable=False) from exc
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except Exception as exc:
            raise self._error(where, exc) from exc
        try:
            if self.starttls:
                smtp.starttls(context=self._tls_context())
            if self.username is not None and self._password is not None:
                smtp.login(self.username, self._password)
            smtp.send_message(mail, from_addr=self.sender, to_addrs=[message.recipient_email])
        except Exception as exc:
            raise self._error(where, exc) from exc
        finally:
            _quit(smtp)

    def _compose(self, message: Message, address: str) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.sender
        mail["To"] = formataddr((message.recipient_name, address))
        mail["Date"] = formatdate(usegmt=True)
        # Stable across retries, so a receiver that already has this message can drop the duplicate.
        digest = hashlib.sha256(message.dedupe_key.encode("utf-8")).hexdigest()[:32]
        domain = _address(self.sender).rpartition("@")[2] or "pulsecheck.invalid"
        mail["Message-ID"] = f"<{digest}@{domain}>"
        mail["X-Pulsecheck-Kind"] = message.kind
        mail["X-Pulsecheck-Dedupe-Key"] = message.dedupe_key
        mail.set_content(message.body)
        return mail

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def _error(self, where: str, exc: BaseException) -> DeliveryError:
        text, retryable = _classify(exc)
        return DeliveryError(scrub(f"{where}: {text}", [self._password]), retryable=retryable)


def _quit(smtp: smtplib.SMTP) -> None:
    """Say goodbye; a failing QUIT after a delivered message must not turn it into a failure."""
    try:
        smtp.quit()
    except Exception:
        smtp.close()


def _classify(exc: BaseException) -> tuple[str, bool]:
    """What went wrong, in words, and whether a later attempt may succeed."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()), (0, b""))
        return f"recipient refused: {_reply(code, reply)}", not 500 <= code < 600
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"login refused: {_reply(exc.smtp_code, exc.smtp_error)}", not 500 <= exc.smtp_code < 600
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"server replied {_reply(exc.smtp_code, exc.smtp_error)}", not 500 <= exc.smtp_code < 600
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"server does not support it: {exc}", False
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"server disconnected: {exc}", True
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message or exc}", False
    if isinstance(exc, TimeoutError):
        return "timed out", True
    if isinstance(exc, OSError):
        return f"cannot connect: {exc.strerror or exc}", True
    if isinstance(exc, smtplib.SMTPException):
        return str(exc), False
    return f"{type(exc).__name__}: {exc}", True


def _address(text: str) -> str:
    return parseaddr(text)[1]


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text.split())}".strip()


def from_settings(settings: Mapping[str, Any], env: Mapping[str, str]) -> EmailChannel:
    """An email channel from its settings; the password is read from `env[settings['password_env']]`."""
    allowed = ["host", "port", "from", "starttls", "ca_file", "username", "password_env", "timeout"]
    reader = ChannelSettings("email", settings, allowed)
    username = reader.text("username")
    password = reader.secret("password_env", env)
    if (username is None) != (password is None):
        raise InputError("channel 'email': set both 'username' and 'password_env', or neither")
    ca_file = reader.text("ca_file")
    if ca_file is not None and not Path(ca_file).expanduser().is_file():
        raise InputError(f"channel 'email': setting 'ca_file': no such file {ca_file!r}")
    starttls = reader.flag("starttls", False)
    if ca_file is not None and not starttls:
        raise InputError("channel 'email': setting 'ca_file' only applies with 'starttls = true'")
    sender = reader.required_text("from")
    if "@" not in _address(sender):
        raise InputError(f"channel 'email': setting 'from' must be an email address, got {sender!r}")
    return EmailChannel(
        reader.required_text("host"),
        sender,
        port=reader.whole("port", 25),
        starttls=starttls,
        ca_file=Path(ca_file).expanduser() if ca_file else None,
        username=username,
        password=password,
        timeout=reader.seconds("timeout", 10.0),
    )
