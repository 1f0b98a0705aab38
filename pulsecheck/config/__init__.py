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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

from pulsecheck.config import checked
from pulsecheck.config.defaults import DEFAULT_DB, TOP_LEVEL, byte_size
from pulsecheck.config.layers import Layer, Merged, Path_, environment_layers, read_file
from pulsecheck.errors import InputError, ValidationFailed
from pulsecheck.vocab import NOTIFY_ROLES

if TYPE_CHECKING:
    from pulsecheck.config.sections import (
        AttachmentsSection,
        CadenceSection,
        CycleSection,
        EscalationSection,
        LimitsSection,
        NotificationsSection,
        PrioritySection,
        ReviewSection,
        RulesSection,
        SchedulerSection,
        ScoringSection,
        SegmentSection,
        SigningSection,
        WebSection,
    )
    from pulsecheck.rules.priority import PriorityMatrix
    from pulsecheck.yamlfile import Limits as YamlLimits

__all__ = ["DEFAULT_DB", "Settings", "SettingsFiles", "load_settings"]

APP_NAME = "pulsecheck"
FILE_NAME = "pulsecheck.toml"
SYSTEM_FILE = Path("/etc/pulsecheck") / FILE_NAME
DEFAULT = "default"


class SettingsFiles(NamedTuple):  # not a dataclass: making one cost start-up more than reading the settings
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


class Settings:
    """The effective settings: every section typed (`settings.scheduler.max_reminders`, the section's model of
    `sections.py`), plus the acting user, the clock, where each key came from, and the secrets the channels need.

    Read-only. The keys some layer set are validated when the settings are loaded; a section no layer set is made
    from its defaults when a command first reads it, so a command that reads no section never imports the typed
    models or pydantic (issue 17)."""

    if TYPE_CHECKING:  # the fields of `sections.SettingsFile`, made on first access (`__getattr__`)
        database_url: str
        timezone: str
        review: ReviewSection
        scoring: ScoringSection
        rules: RulesSection
        priority: PrioritySection
        cycle: CycleSection
        attachments: AttachmentsSection
        notifications: NotificationsSection
        scheduler: SchedulerSection
        escalation: EscalationSection
        cadence: dict[str, CadenceSection]
        segments: dict[str, SegmentSection]
        signing: SigningSection
        web: WebSection
        limits: LimitsSection

    user: str
    now_override: datetime | None  # PULSECHECK_NOW: a fixed clock for demos, tests and replays
    origins: dict[Path_, str]
    secrets: dict[str, str]  # values of the variables named by password_env/token_env: never printed

    def __init__(
        self,
        values: dict[str, Any],
        user: str = "",
        now_override: datetime | None = None,
        origins: dict[Path_, str] | None = None,
        secrets: dict[str, str] | None = None,
        unchecked: Merged | None = None,
    ) -> None:
        """`values`: the top-level keys some layer set, validated (`Merged.validate`). `unchecked`: the layers,
        whose other keys an earlier command validated with these very values (`checked`): each is typed when a
        command first reads it."""
        fields = {**values, "user": user, "now_override": now_override, "origins": origins or {}}
        self.__dict__.update(fields, secrets=secrets or {}, _unchecked=unchecked)

    def __getattr__(self, name: str) -> Any:
        """A key no layer set: its default (a section's model made without validation: defaults are known good).
        A key the layers set that was validated by an earlier command: typed now."""
        value: Any
        unchecked = self.__dict__.get("_unchecked")
        if unchecked is not None and name in unchecked.values and not name.startswith("_"):
            value = unchecked.validate(frozenset((name,)))[name]
        elif name in TOP_LEVEL:
            value = TOP_LEVEL[name]
        else:
            from pulsecheck.config.sections import SettingsFile

            field = SettingsFile.model_fields.get(name) if not name.startswith("_") else None
            if field is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            value = field.get_default(call_default_factory=True)
        self.__dict__[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"settings are read-only: {name}")

    def role_lists(self) -> dict[str, list[str]]:
        """`[notifications.roles]`, the lists of user names: as the layers hold them when an earlier command
        validated them (the lists are the typed value; every command checks the names exist, and so need not type
        the whole section for it), else from the section."""
        unchecked = self.__dict__.get("_unchecked")
        if unchecked is not None and "notifications" not in self.__dict__:
            return dict(unchecked.values.get("notifications", {}).get("roles", {}))
        return self.notifications.roles

    def priority_matrix(self) -> PriorityMatrix:
        """`[priority]` as the domain's matrix: of the section's values as the layers hold them when an earlier
        command validated them (typing the section imports pydantic, a fifth of `report portfolio`'s start-up), of
        the typed section when this command validated it, or the defaults when no layer sets it."""
        from pulsecheck.rules.priority import PriorityMatrix

        typed = self.__dict__.get("priority")
        unchecked = self.__dict__.get("_unchecked")
        if typed is not None:
            return PriorityMatrix.of(typed.model_dump())
        return PriorityMatrix.of(unchecked.values.get("priority", {}) if unchecked is not None else {})

    def yaml_limits(self) -> YamlLimits:
        """`[limits]`'s bounds of a YAML load (models, rules, review forms), taken as `priority_matrix` takes its
        section: from the values an earlier command validated without typing them (pydantic), from the typed
        section when this command validated it, or the defaults."""
        from pulsecheck.yamlfile import Limits

        typed: LimitsSection | None = self.__dict__.get("limits")
        if typed is not None:
            return typed.yaml()
        unchecked = self.__dict__.get("_unchecked")
        values = unchecked.values.get("limits", {}) if unchecked is not None else {}
        default = Limits()
        return Limits(byte_size(values["yaml_max_size"]) if "yaml_max_size" in values else default.max_bytes,
                      values.get("yaml_max_depth", default.max_depth), values.get("yaml_max_values", default.max_nodes))

    def is_default(self, *path: str) -> bool:
        """Whether no layer set the key or table at `path` (nor anything below it): it has its default."""
        return not any(known[: len(path)] == path or path[: len(known)] == known for known in self.origins)

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
        if self.origin("notifications", "channel") != DEFAULT or self.notifications.channel != "log":
            return None
        return "note: notifications go to the log channel (no [notifications] channel set in any settings file)"


def load_settings(
    db: str | None = None,
    config: str | None = None,
    user: str | None = None,
    env: Mapping[str, str] | None = None,
    files: SettingsFiles | None = None,
    remembered: Path | None = None,
) -> Settings:
    """Read, merge and validate every layer; InputError naming the file (or variable) and key of a problem.

    `env` is the environment (default: the process's); `files` where the system, user and project files are
    (default: `SettingsFiles.standard`; `SettingsFiles()` reads none, for the demo). `remembered`: a directory
    of the values that passed before (`checked`; the CLI's): values found there are not validated again, and
    each of their sections is typed when the command first reads it.
    """
    env = dict(os.environ if env is None else env)
    files = SettingsFiles.standard(env) if files is None else files
    layers = [read_file(path) for path in (files.system, files.user, files.project) if path and path.is_file()]
    layers += environment_layers(env)
    layers += _explicit_file(config, env)
    if db:
        layers.append(Layer("--db", {"database_url": db}))
    merged = Merged(layers)
    key = None if remembered is None or merged.plain_text() else checked.digest(merged.values)
    names = None if key is None or remembered is None else checked.recall(remembered, key)
    unchecked = None
    if names is None:
        values, names = _checked(merged)
        if key is not None and remembered is not None:
            checked.remember(remembered, key, names)
    else:  # validated before: the text of the top-level keys as it is, the sections typed when read
        values = {name: value for name, value in merged.values.items() if name in TOP_LEVEL}
        unchecked = merged
    acting, user_origin = _acting_user(user, env)
    secrets = {name: env[name] for name in names if name in env}
    now = _fixed_now(env, ZoneInfo(values.get("timezone", TOP_LEVEL["timezone"])))
    return Settings(values, acting, now, {**merged.origins, ("user",): user_origin}, secrets, unchecked)


def _checked(merged: Merged) -> tuple[dict[str, Any], list[str]]:
    """The layers' values validated (`Merged.validate`), their roles checked, and the names of the variables
    holding secrets (the defaults name none); InputError naming the origin and key of each problem."""
    values = merged.validate()
    names: list[str] = []
    if "notifications" in values or "escalation" in values:  # the defaults name known roles only
        from pulsecheck.config.sections import role_problems

        sections = Settings(values)  # what the layers set, the rest its defaults
        found = role_problems(sections.notifications, sections.escalation, NOTIFY_ROLES)
        problems = [merged.problem(loc, message) for loc, message in found]
        if problems:
            raise ValidationFailed(problems)
        names = sections.notifications.secret_names() if "notifications" in values else []
    return values, names


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
