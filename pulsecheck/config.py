"""Settings: `pulsecheck.toml` plus PULSECHECK_* environment variables, parsed once into typed objects."""

from __future__ import annotations

import getpass
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pulsecheck.errors import InputError
from pulsecheck.timeutil import parse_duration

DEFAULT_DB = "sqlite:///pulsecheck.db"
DEFAULT_CONFIG = "pulsecheck.toml"


@dataclass(frozen=True)
class ReviewSettings:
    """Defaults for new reviews."""

    due_in: timedelta = timedelta(days=14)
    cadence_due_in: timedelta = timedelta(days=14)


@dataclass(frozen=True)
class Settings:
    """Everything configurable; sections the code does not model stay available as raw mappings."""

    database_url: str = DEFAULT_DB
    user: str = ""
    config_path: Path | None = None
    timezone: str = "UTC"
    review: ReviewSettings = field(default_factory=ReviewSettings)
    now_override: datetime | None = None  # PULSECHECK_NOW: a fixed clock for demos, tests and replays
    raw: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def now(self) -> datetime:
        """The current time (aware, UTC), or the fixed clock of PULSECHECK_NOW."""
        return (self.now_override or datetime.now(UTC)).astimezone(UTC)

    def section(self, name: str) -> Mapping[str, Any]:
        """A raw `[name]` table of the config file (empty when absent)."""
        value = self.raw.get(name, {})
        if not isinstance(value, Mapping):
            raise InputError(f"{self.config_path}: [{name}] must be a table")
        return value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise InputError(f"{path}: cannot read config: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None


def _duration(table: Mapping[str, Any], key: str, default: timedelta, where: str) -> timedelta:
    return parse_duration(table[key], f"{where}.{key}") if key in table else default


def load_settings(
    db: str | None = None,
    config: str | None = None,
    user: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve settings: command-line values beat environment variables, which beat the file."""
    env = dict(os.environ if env is None else env)
    config_name = config or env.get("PULSECHECK_CONFIG")
    path: Path | None = None
    raw: dict[str, Any] = {}
    if config_name:
        path = Path(config_name)
        if not path.is_file():
            raise InputError(f"--config {config_name}: no such file")
        raw = _read_toml(path)
    elif Path(DEFAULT_CONFIG).is_file():
        path = Path(DEFAULT_CONFIG)
        raw = _read_toml(path)
    where = str(path or DEFAULT_CONFIG)
    timezone = str(raw.get("timezone", "UTC"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"{where}: timezone: unknown time zone {timezone!r}") from None
    review_table = raw.get("review", {})
    review = ReviewSettings(
        due_in=_duration(review_table, "due_in", ReviewSettings.due_in, f"{where}: review"),
        cadence_due_in=_duration(review_table, "cadence_due_in", ReviewSettings.cadence_due_in, f"{where}: review"),
    )
    now_override = None
    if env.get("PULSECHECK_NOW"):
        try:
            now_override = datetime.fromisoformat(env["PULSECHECK_NOW"])
        except ValueError:
            raise InputError(f"PULSECHECK_NOW={env['PULSECHECK_NOW']!r}: not an ISO date-time") from None
        if now_override.tzinfo is None:
            now_override = now_override.replace(tzinfo=ZoneInfo(timezone))
    return Settings(
        now_override=now_override,
        database_url=db or env.get("PULSECHECK_DATABASE_URL") or str(raw.get("database_url", DEFAULT_DB)),
        user=user or env.get("PULSECHECK_USER") or _os_login(),
        config_path=path,
        timezone=timezone,
        review=review,
        raw=raw,
        env=env,
    )


def _os_login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
