"""Settings, parsed and validated once when a command starts, layered like git's.

Each key comes from the highest layer that sets it: built-in defaults < the system file
(`/etc/pulsecheck/pulsecheck.toml`, or `$PULSECHECK_SYSTEM_CONFIG`) < the user file (platformdirs' user config
dir: `~/.config/pulsecheck/pulsecheck.toml`, `$XDG_CONFIG_HOME` honoured) < the project file
(`./pulsecheck.toml`) < `PULSECHECK_*` variables < `--config FILE` (or `$PULSECHECK_CONFIG`) and flags.
Tables merge key by key. Secrets stay in environment variables whose names the files hold.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pulsecheck.config.layers import Layer, Merged, Path_, environment_layers, read_file
from pulsecheck.config.sections import DEFAULT_DB, SettingsFile
from pulsecheck.errors import InputError, ValidationFailed
from pulsecheck.vocab import NOTIFY_ROLES

__all__ = ["DEFAULT_DB", "Settings", "SettingsFiles", "load_settings"]

APP_NAME = "pulsecheck"
FILE_NAME = "pulsecheck.toml"
SYSTEM_FILE = Path("/etc/pulsecheck") / FILE_NAME
DEFAULT = "default"


@dataclass(frozen=True)
class SettingsFiles:
    """Where the layered settings files are looked for (None: that layer has no file)."""

    system: Path | None = None
    user: Path | None = None
    project: Path | None = None

    @classmethod
    def standard(cls, env: Mapping[str, str]) -> SettingsFiles:
        """The system file (`$PULSECHECK_SYSTEM_CONFIG`, empty for none), the user file in platformdirs' user
        config dir (which follows the process's XDG_CONFIG_HOME and HOME), and `./pulsecheck.toml`."""
        import platformdirs

        system = env.get("PULSECHECK_SYSTEM_CONFIG", str(SYSTEM_FILE))
        user = platformdirs.user_config_path(APP_NAME) / FILE_NAME
        return cls(Path(system) if system else None, user, Path(FILE_NAME))


class Settings(SettingsFile):
    """The effective settings: every section typed (`settings.scheduler.max_reminders`), plus the acting user,
    the clock, where each key came from, and the secrets the channels need."""

    user: str = ""
    now_override: datetime | None = None  # PULSECHECK_NOW: a fixed clock for demos, tests and replays
    origins: dict[Path_, str] = {}
    secrets: dict[str, str] = {}  # values of the variables named by password_env/token_env: never printed

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def now(self) -> datetime:
        """The current time (aware, UTC), or the fixed clock of PULSECHECK_NOW."""
        return (self.now_override or datetime.now(UTC)).astimezone(UTC)

    def origin(self, *path: str | int) -> str:
        """Where the key at `path` came from: a file, a variable, a flag, or `default`."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.origins:
                return self.origins[path[:end]]
        return DEFAULT

    def where(self, *path: str | int) -> str:
        """`origin: [table] key`, the start of an error message about the key at `path`."""
        from pulsecheck.config.layers import describe

        return f"{self.origin(*path)}: {describe(path)}"

    def log_channel_note(self) -> str | None:
        """A note for commands that send, when notifications go to the log only because nobody chose a channel."""
        if self.notifications.channel != "log" or self.origin("notifications", "channel") != DEFAULT:
            return None
        return "note: notifications go to the log channel (no [notifications] channel set in any settings file)"


def load_settings(
    db: str | None = None,
    config: str | None = None,
    user: str | None = None,
    env: Mapping[str, str] | None = None,
    files: SettingsFiles | None = None,
) -> Settings:
    """Read, merge and validate every layer; InputError naming the file (or variable) and key of a problem.

    `env` is the environment (default: the process's); `files` where the system, user and project files are
    (default: `SettingsFiles.standard`; `SettingsFiles()` reads none, for the demo).
    """
    env = dict(os.environ if env is None else env)
    files = SettingsFiles.standard(env) if files is None else files
    layers = [read_file(path) for path in (files.system, files.user, files.project) if path and path.is_file()]
    layers += environment_layers(env)
    layers += _explicit_file(config, env)
    if db:
        layers.append(Layer("--db", {"database_url": db}))
    merged = Merged(layers)
    values = merged.validate()
    problems = [merged.problem(loc, message) for loc, message in values.role_problems(NOTIFY_ROLES)]
    if problems:
        raise ValidationFailed(problems)
    acting, user_origin = _acting_user(user, env)
    origins = {**merged.origins, ("user",): user_origin}
    secrets = {name: env[name] for name in values.notifications.secret_names() if name in env}
    fields: dict[str, Any] = {name: getattr(values, name) for name in SettingsFile.model_fields}
    now = _fixed_now(env, ZoneInfo(values.timezone))
    return Settings.model_construct(user=acting, now_override=now, origins=origins, secrets=secrets, **fields)


def _explicit_file(config: str | None, env: Mapping[str, str]) -> list[Layer]:
    """`--config FILE`, else `$PULSECHECK_CONFIG`: the file must exist."""
    name = config or env.get("PULSECHECK_CONFIG")
    if not name:
        return []
    if not Path(name).is_file():
        raise InputError(f"{f'--config {name}' if config else f'PULSECHECK_CONFIG={name}'}: no such file")
    return [read_file(Path(name))]




def _acting_user(user: str | None, env: Mapping[str, str]) -> tuple[str, str]:
    if user:
        return user, "--as"
    if env.get("PULSECHECK_USER"):
        return env["PULSECHECK_USER"], "PULSECHECK_USER"
    try:
        return getpass.getuser(), "OS login"
    except (KeyError, OSError):
        return "", "OS login"


def _fixed_now(env: Mapping[str, str], tz: ZoneInfo) -> datetime | None:
    text = env.get("PULSECHECK_NOW")
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"PULSECHECK_NOW={text!r}: not an ISO date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=tz)
