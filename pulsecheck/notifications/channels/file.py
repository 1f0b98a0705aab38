"""The `file` channel: appends one JSON line per message to a file (a JSONL outbox others can tail)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pulsecheck.notifications.channels.base import ChannelSettings, DeliveryError
from pulsecheck.notifications.message import Message


class FileChannel:
    """Appends `message.to_dict()` as one JSON line to `path`, flushed and fsynced before returning."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, message: Message) -> None:
        """Append one line; a failure to create or write the file is a retryable DeliveryError."""
        line = (message.to_json() + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One write() on an O_APPEND descriptor keeps lines whole when several processes append.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(f"short write ({written} of {len(line)} bytes)")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise DeliveryError(f"file: cannot append to {self.path}: {reason}", retryable=True) from exc


def from_settings(settings: Mapping[str, Any], env: Mapping[str, str]) -> FileChannel:
    """A file channel; setting `path` (required) is the JSONL file, `~` expanded."""
    reader = ChannelSettings("file", settings, ["path"])
    return FileChannel(Path(reader.required_text("path")).expanduser())
