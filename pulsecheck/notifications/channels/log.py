"""The `log` channel: writes each message to the `pulsecheck.notifications` logger."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pulsecheck.errors import InputError
from pulsecheck.notifications.channels.base import ChannelSettings
from pulsecheck.notifications.message import Message

LOGGER_NAME = "pulsecheck.notifications"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class LogChannel:
    """Logs the recipient, subject and body of each message; never fails."""

    name = "log"

    def __init__(self, level: int = logging.INFO, logger: logging.Logger | None = None) -> None:
        self.level = level
        self.logger = logger or logging.getLogger(LOGGER_NAME)

    def send(self, message: Message) -> None:
        """Log `message` as one record: kind, recipient and subject on the first line, then the body."""
        address = message.recipient_email or message.recipient_webhook or "-"
        self.logger.log(
            self.level,
            "notification %s to %s <%s>: %s\n%s",
            message.kind,
            message.recipient_name,
            address,
            message.subject,
            message.body.rstrip("\n"),
            extra={"notification": message.to_dict()},
        )


def from_settings(settings: Mapping[str, Any], env: Mapping[str, str]) -> LogChannel:
    """A log channel; setting `level` is one of debug, info (default), warning, error."""
    reader = ChannelSettings("log", settings, ["level"])
    level = (reader.text("level") or "info").lower()
    if level not in _LEVELS:
        raise InputError(f"channel 'log': setting 'level' must be one of {', '.join(_LEVELS)}, got {level!r}")
    return LogChannel(_LEVELS[level])
