"""The channel protocol, its delivery error, and the small readers channels use for their settings."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from pulsecheck.errors import InputError, PulsecheckError
from pulsecheck.notifications.message import Message


class DeliveryError(PulsecheckError):
    """A message could not be delivered; `retryable` says whether trying again later may succeed.

    `retry_after` is the delay in seconds the receiver asked for (HTTP Retry-After), if any.
    """

    exit_code = 1

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@runtime_checkable
class Channel(Protocol):
    """Delivers one message, or raises DeliveryError."""

    name: str

    def send(self, message: Message) -> None:
        """Deliver `message`; raise DeliveryError (with `retryable`) when it was not delivered."""
        ...


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every non-empty secret replaced by `***`, for errors that may echo server replies."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class ChannelSettings:
    """Typed, checked access to one channel's settings table; every problem is an InputError."""

    def __init__(self, channel: str, settings: Mapping[str, Any], allowed: Iterable[str]) -> None:
        self.channel = channel
        self.data = dict(settings)
        allowed = list(allowed)
        for key in sorted(self.data):
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                known = ", ".join(sorted(allowed))
                hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {known})"
                raise InputError(f"channel {channel!r}: unknown setting {key!r}{hint}")

    def _where(self, key: str) -> str:
        return f"channel {self.channel!r}: setting {key!r}"

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        """A text setting; None when absent and not required."""
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise InputError(f"{self._where(key)} is required")
            return default
        if not isinstance(value, str):
            raise InputError(f"{self._where(key)} must be text, got {value!r}")
        return value

    def required_text(self, key: str) -> str:
        """A text setting that must be present."""
        value = self.text(key, required=True)
        assert value is not None
        return value

    def whole(self, key: str, default: int) -> int:
        """A whole-number setting (e.g. a port)."""
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InputError(f"{self._where(key)} must be a positive whole number, got {value!r}")
        return value

    def seconds(self, key: str, default: float) -> float:
        """A positive number of seconds (e.g. a timeout)."""
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise InputError(f"{self._where(key)} must be a positive number of seconds, got {value!r}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        """A true/false setting."""
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise InputError(f"{self._where(key)} must be true or false, got {value!r}")
        return value

    def secret(self, key: str, env: Mapping[str, str]) -> str | None:
        """The secret held by the environment variable that setting `key` names; None if `key` is unset.

        The error names the variable, never a value, so it is safe to print.
        """
        var = self.text(key)
        if var is None:
            return None
        value = env.get(var)
        if not value:
            raise InputError(f"{self._where(key)} names environment variable {var!r}, which is not set or empty")
        return value
