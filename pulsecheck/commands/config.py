"""config: show the effective settings and where each came from (like `git config --list --show-origin`)."""

from __future__ import annotations

import json
from datetime import time, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
from pydantic import BaseModel

from pulsecheck.commands.common import App, emit_json, json_option, pass_app

# Keys whose value may carry a secret in the URL itself (a password, a Slack hook path): shown without it.
URL_KEYS = {("notifications", "webhook", "url"), ("notifications", "webhook", "proxy")}


@click.group()
def config() -> None:
    """The settings: built-in defaults < system file < user file < ./pulsecheck.toml < PULSECHECK_* < flags."""


@config.command("show")
@json_option
@pass_app
def config_show(app: App, as_json: bool) -> None:
    """Every effective setting, with the file, environment variable or flag it came from (or `default`).

    Secrets never appear: only the names of the environment variables that hold them.
    """
    rows = effective_settings(app)
    if as_json:
        emit_json(rows)
        return
    key_width = max(len(row["key"]) for row in rows)
    texts = [_text(row["value"]) for row in rows]
    value_width = min(max(len(text) for text in texts), 48)
    for row, text in zip(rows, texts, strict=True):
        click.echo(f"{row['key']:<{key_width}}  {text:<{value_width}}  {row['origin']}".rstrip())


def effective_settings(app: App) -> list[dict[str, Any]]:
    """`{key, value, origin}` for every setting, in the order of the settings file; values as JSON data."""
    from pulsecheck.config.layers import flatten
    from pulsecheck.config.sections import SettingsFile

    settings = app.settings
    rows = []
    for name in SettingsFile.model_fields:
        for path, value in flatten(getattr(settings, name), (name,)):
            plain = _plain(value)
            if path == ("database_url",):
                plain = _hide_password(plain)
            elif path in URL_KEYS and plain:
                plain = _origin_only(plain)
            rows.append({"key": ".".join(map(str, path)), "value": plain, "origin": settings.origin(*path)})
    rows.insert(2, {"key": "user", "value": settings.user, "origin": settings.origin("user")})
    return rows


def _plain(value: Any) -> Any:
    """JSON data for a setting: durations as `2d`, times as `09:00`, tables as objects."""
    from pulsecheck.timeutil import format_duration

    if isinstance(value, BaseModel):
        return {field.alias or name: _plain(getattr(value, name)) for name, field in type(value).model_fields.items()}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, time):
        return value.isoformat(timespec="minutes")
    return value


def _text(value: Any) -> str:
    if value is None:
        return "(unset)"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _origin_only(url: str) -> str:
    """Scheme, host and port; a path, query or user info is replaced by `***` (a webhook path is a secret)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    hidden = "/***" if (parts.path not in ("", "/") or parts.query or parts.username) else ""
    return urlunsplit((parts.scheme, f"{host}{port}", hidden, "", ""))


COMMANDS = [config]
