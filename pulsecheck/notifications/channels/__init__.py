"""Delivery channels, one module each, chosen from configuration by name.

`build_channel("email", settings, env)` imports `channels/email.py` only then, so the CLI starts
without smtplib or urllib. Each channel module exposes `from_settings(settings, env) -> Channel`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from pulsecheck.errors import InputError
from pulsecheck.notifications.channels.base import Channel, DeliveryError

__all__ = ["CHANNEL_NAMES", "Channel", "DeliveryError", "build_channel"]

# name -> module under pulsecheck.notifications.channels
_MODULES = {"log": "log", "file": "file", "email": "email", "webhook": "webhook"}
CHANNEL_NAMES: tuple[str, ...] = tuple(sorted(_MODULES))


def build_channel(name: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> Channel:
    """The channel called `name`, configured from its settings table; secrets are read from `env` only."""
    module_name = _MODULES.get(name)
    if module_name is None:
        raise InputError(f"unknown notification channel {name!r} (valid: {', '.join(CHANNEL_NAMES)})")
    module = importlib.import_module(f"{__name__}.{module_name}")
    channel: Channel = module.from_settings(settings, env)
    return channel
