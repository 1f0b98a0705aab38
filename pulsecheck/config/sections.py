"""The typed settings: one pydantic model per section of pulsecheck.toml, each with its defaults.

Models are strict (a TOML string is not a number, a string is not a list) and forbid unknown keys. Values
that need more than a type (durations, clock times, crontab lines, time zones) are converted by validators
whose errors name only the problem; the loader adds the file and key.
No `from __future__ import annotations`: pydantic would eval every annotation string at start-up (every
command pays for it); only forward references are quoted.
"""

import re
from datetime import time, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from pulsecheck.config.defaults import DEFAULT_DB, TOP_LEVEL, byte_size
from pulsecheck.errors import InputError
from pulsecheck.rules.priority import DEFAULT_BASE
from pulsecheck.timeutil import parse_duration
from pulsecheck.vocab import Priority, Severity

if TYPE_CHECKING:
    from pulsecheck.workflow.imports import InputLimits
    from pulsecheck.yamlfile import Limits as YamlLimits

CHANNELS = ("log", "file", "email", "webhook")
# Crontab shorthands (day-of-week by name: APScheduler 3 numbers weekdays from Monday).
CADENCES = {"weekly": "0 9 * * mon", "monthly": "0 9 1 * *", "quarterly": "0 9 1 1,4,7,10 *"}
_WHERE = "value"  # parse_duration's prefix, removed: the loader names the file and key


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected a duration like 7d, 12h or 2w, got {value!r}")
    try:
        return parse_duration(value, _WHERE)
    except InputError as exc:
        raise ValueError(str(exc).removeprefix(f"{_WHERE}: ")) from None


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"expected a time of day like 09:00, got {value!r}") from None


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def _crontab(value: str) -> str:
    from apscheduler.triggers.cron import CronTrigger  # only when a layer sets one: defaults are known good

    try:
        CronTrigger.from_crontab(CADENCES.get(value, value))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not weekly, monthly, quarterly or a crontab line: {exc}") from None
    return value


def _off(value: Any) -> Any:
    return None if value in ("", "off", False) else value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
PositiveDuration = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_positive)]
ClockTime = Annotated[time, BeforeValidator(_clock)]
Crontab = Annotated[str, AfterValidator(_crontab)]
Names = list[str]  # user or role names: a list of strings, never one string


class Section(BaseModel):
    """A table of pulsecheck.toml: strict types, no unknown keys, immutable.

    Validators are built on first use (`defer_build`), not at import: a command validates only the sections some
    layer sets (`Merged.validate`), and the defaults of the others are made without validation (they are known
    good), so a read command with no settings file builds no section's validator at all."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True, defer_build=True)


class ReviewSection(Section):
    """`[review]`: due dates of new reviews."""

    due_in: Duration = timedelta(days=14)
    cadence_due_in: Duration = timedelta(days=14)


class ScoringSection(Section):
    """`[scoring]`: the live model file `model check` compares."""

    model: str | None = None


class RulesSection(Section):
    """`[rules]`: how evaluation runs."""

    workers: int = Field(default=2, ge=1)
    batch_size: int = Field(default=500, ge=1)


def _with_default_bases(value: dict[Severity, Priority]) -> dict[Severity, Priority]:
    return {**DEFAULT_BASE, **value}  # a file that sets one severity keeps the others' defaults


class PrioritySection(Section):
    """`[priority]`: the severity's base priority, one level up per aggravating criterion; at most `p1_share` of a
    run's escalations (the top by priority score) stay P1. Commands take the matrix of its values from
    `Settings.priority_matrix()`."""

    renewal_within_days: int = Field(default=90, ge=0)
    arr_at_least: float = Field(default=100_000, ge=0)
    open_issues_at_least: int = Field(default=3, ge=0)
    p1_share: float = Field(default=0.10, ge=0, le=1)
    base: Annotated[dict[Severity, Priority], AfterValidator(_with_default_bases)] = Field(
        default_factory=lambda: dict(DEFAULT_BASE)
    )


class CycleSection(Section):
    """`[cycle]`: thresholds of the review cycle's trends step."""

    decline_days: int = Field(default=30, ge=1)
    decline_points: float = Field(default=10.0, ge=0)
    sudden_change: float = Field(default=15.0, ge=0)
    low_streak: int = Field(default=3, ge=1)
    low_below: float | None = None  # default: the approved model's lowest bucket threshold
    renewal_days: int = Field(default=60, ge=0)
    usage_kpi: str = "usage"


class AttachmentsSection(Section):
    """`[attachments]`: files stored in the database (review attachments, cycle evidence)."""

    max_size: Annotated[int, BeforeValidator(byte_size)] = 10 * 1024 * 1024


class LimitsSection(Section):
    """`[limits]`: how large an input may be before it is refused with one line, and how many bad rows one
    import reports. (Durations stay bounded by `timeutil.MAX_DURATION`, 100 years: a sanity bound that keeps
    date arithmetic from overflowing, not a policy anyone tunes.)"""

    yaml_max_size: Annotated[int, BeforeValidator(byte_size)] = 5 * 1024 * 1024
    yaml_max_depth: int = Field(default=64, ge=1, le=1000)
    yaml_max_values: int = Field(default=1_000_000, ge=1)  # values once every alias is expanded
    import_max_problems: int = Field(default=50, ge=1)
    csv_max_field: int = Field(default=128 * 1024, ge=1)  # characters
    csv_max_line: int = Field(default=1024 * 1024, ge=1)  # characters
    json_max_record: int = Field(default=1024 * 1024, ge=1)  # characters

    def yaml(self) -> "YamlLimits":
        """The bounds of a YAML load (models, rules, review forms)."""
        from pulsecheck.yamlfile import Limits

        return Limits(self.yaml_max_size, self.yaml_max_depth, self.yaml_max_values)

    def imports(self) -> "InputLimits":
        """The bounds of a CSV/JSON import."""
        from pulsecheck.workflow.imports import InputLimits

        return InputLimits(self.import_max_problems, self.csv_max_field, self.csv_max_line, self.json_max_record)


class FileOptions(Section):
    """`[notifications.file]`; the channel module checks what is required when it is used."""

    path: str | None = None


class LogOptions(Section):
    """`[notifications.log]`."""

    level: Literal["debug", "info", "warning", "error"] | None = None


class EmailOptions(Section):
    """`[notifications.email]`; the password is the value of the variable `password_env` names."""

    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    sender: str | None = Field(default=None, alias="from")
    starttls: bool | None = None
    ca_file: str | None = None
    username: str | None = None
    password_env: str | None = None
    timeout: float | None = Field(default=None, gt=0)


class WebhookOptions(Section):
    """`[notifications.webhook]`; the token is the value of the variable `token_env` names."""

    url: str | None = None
    token_env: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    blocks: bool | None = None
    proxy: str | None = None
    # Hosts a user may point their own webhook at without an admin (`users add ME --webhook URL`).
    allowed_hosts: list[str] = Field(default_factory=list)


ChannelName = Literal["log", "file", "email", "webhook"]
# Route keys: a kind group (or one kind) of notifications; see `notifications.outbox.KIND_GROUPS`.
ROUTE_KEYS = (
    "escalation", "reminder", "review", "notice", "digest", "escalation_opened", "escalation_level_up",
    "review_due", "review_overdue", "review_submitted", "review_rejected", "review_approved", "review_opened",
    "generic", "cycle", "cycle_event",
)  # fmt: skip
ROUTE_LEVELS = ("default", "critical", "high", "medium", "low")


def _channels(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}expected a list of channels like [\"email\", \"webhook\"], got {value!r}")
    bad = [name for name in value if name not in CHANNELS]
    if bad:
        raise ValueError(f"{where}unknown channel {bad[0]!r} (valid: {', '.join(CHANNELS)})")
    return list(dict.fromkeys(value))


def _route(value: Any) -> dict[str, list[str]]:
    """A route: a list of channels, or a table of them per severity (`default` for the other severities)."""
    if not isinstance(value, dict):
        return {"default": _channels(value, "")}
    unknown = sorted(set(value) - set(ROUTE_LEVELS))
    if unknown:
        raise ValueError(f"unknown severity {unknown[0]!r} (valid: {', '.join(ROUTE_LEVELS)})")
    return {level: _channels(channels, f"{level}: ") for level, channels in value.items()}


def _route_keys(value: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(value) - set(ROUTE_KEYS))
    if unknown:
        raise ValueError(f"unknown route {unknown[0]!r} (valid: {', '.join(ROUTE_KEYS)})")
    return value


Route = Annotated[dict[str, list[str]], BeforeValidator(_route)]


class NotificationsSection(Section):
    """`[notifications]`: the channel, routes, retries, each channel's table, the escalation matrix, role lists,
    the daily alert budget and where links in messages point."""

    channel: ChannelName = "log"
    # kind group -> channels (or per severity); a kind without a route goes to `channel`
    routes: Annotated[dict[str, Route], AfterValidator(_route_keys)] = Field(default_factory=dict)
    budget: int = Field(default=20, ge=1)  # messages per recipient per day before the rest wait for a digest
    digest_at: ClockTime = time(17, 0)  # business time zone: when held and daily-digest messages go out
    base_url: str | None = None  # fallback of `[web] base_url`: calls to action become links
    max_attempts: int = Field(default=5, ge=1)
    retry_base: PositiveDuration = timedelta(minutes=1)
    retry_max: PositiveDuration = timedelta(hours=1)
    log: LogOptions | None = None
    file: FileOptions | None = None
    email: EmailOptions | None = None
    webhook: WebhookOptions | None = None
    matrix: dict[Severity, Annotated[Names, Field(min_length=1)]] = Field(default_factory=dict)
    roles: dict[str, Names] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _retry_max_not_below_base(self) -> "NotificationsSection":
        if self.retry_max < self.retry_base:
            raise ValueError("retry_max must not be shorter than retry_base")
        return self

    def channel_options(self, name: str) -> dict[str, Any]:
        """The settings table of channel `name` as its module reads it (unset keys left out)."""
        options = getattr(self, name, None) if name in CHANNELS else None
        if not isinstance(options, Section):
            return {}
        # allowed_hosts says who may set a webhook, not how the channel sends: the channel never sees it
        return options.model_dump(by_alias=True, exclude_none=True, exclude={"allowed_hosts"})

    def base_url_or(self, web: str | None) -> str | None:
        """Where links point: `[web] base_url`, else `[notifications] base_url`, without a trailing slash."""
        url = web or self.base_url
        return url.rstrip("/") if url else None

    def secret_names(self) -> list[str]:
        """The environment variables that hold channel secrets (their names are settings, their values not)."""
        names = [self.email.password_env if self.email else None, self.webhook.token_env if self.webhook else None]
        return [name for name in names if name]


class SchedulerSection(Section):
    """`[scheduler]`: reminders, the next review's time of day, periodic evaluation and dispatch."""

    reminder_every: PositiveDuration = timedelta(days=2)
    max_reminders: int = Field(default=3, ge=0)
    next_review_at: ClockTime = time(9, 0)
    evaluate: Annotated[Crontab | None, BeforeValidator(_off)] = "0 6 * * *"  # None: periodic evaluation off
    dispatch_every: PositiveDuration = timedelta(minutes=1)


class LadderStep(Section):
    """One step of the escalation ladder: who is told, how long after the escalation opened."""

    role: str
    after: Duration = timedelta(0)


def _ordered(ladder: list[LadderStep]) -> list[LadderStep]:
    if [step.after for step in ladder] != sorted(step.after for step in ladder):
        raise ValueError("steps must come in the order of their `after`")
    return ladder


class EscalationSection(Section):
    """`[escalation]`: the ladder an unacknowledged escalation climbs."""

    ladder: Annotated[list[LadderStep], Field(min_length=1), AfterValidator(_ordered)] = Field(
        default_factory=lambda: [
            LadderStep.model_construct(role="owner", after=timedelta(0)),
            LadderStep.model_construct(role="manager", after=timedelta(days=2)),
            LadderStep.model_construct(role="head_of_cs", after=timedelta(days=5)),
        ]
    )
    # Who gets an escalation on an account without an owner (after `[segments.<name>] owner`); none: the admins.
    fallback_owner: str | None = None


class SegmentSection(Section):
    """`[segments.<name>]`: the default owner of the segment's escalations on accounts without an owner."""

    owner: str | None = None


class CadenceSection(Section):
    """`[cadence.<segment>]`: a cadence review per account of the segment."""

    schedule: Crontab
    due_in: Duration | None = None  # default: [review] cadence_due_in


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be empty")
    return value


class SigningSection(Section):
    """`[signing]`: whether sign-offs must carry a personal SSH signature, and the key that makes it."""

    required: bool = False
    # a private key, or a public key whose private half is in ssh-agent; default: `keys new`'s
    key: Annotated[str | None, AfterValidator(_not_blank)] = None


def _base_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def _networks(value: list[str]) -> list[str]:
    import ipaddress

    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return value


class WebSection(Section):
    """`[web]`: the web app (`pulsecheck serve`): its public address, sessions, server key and trusted proxies."""

    base_url: Annotated[str | None, AfterValidator(_base_url)] = None  # links in notifications; https -> Secure
    session_idle: PositiveDuration = timedelta(hours=8)
    signing_key: str | None = None  # the server's SSH key: countersigns web sign-offs where [signing] required
    trusted_proxy_header: str | None = None  # e.g. X-Remote-User, off by default
    trusted_proxies: Annotated[list[str], AfterValidator(_networks)] = Field(default_factory=list)
    secret_file: str | None = None  # the cookie-signing secret; default: generated once and kept in the database
    invite_valid: PositiveDuration = timedelta(days=3)
    max_failures_per_user: int = Field(default=5, ge=1)  # failed sign-ins in `failure_window` before refusing
    max_failures_per_address: int = Field(default=20, ge=1)
    failure_window: PositiveDuration = timedelta(minutes=15)


class SettingsFile(Section):
    """Everything a settings file (or the environment) can set; every key has a default."""

    database_url: str = DEFAULT_DB
    timezone: Annotated[str, AfterValidator(_zone)] = TOP_LEVEL["timezone"]
    review: ReviewSection = Field(default_factory=ReviewSection.model_construct)
    scoring: ScoringSection = Field(default_factory=ScoringSection.model_construct)
    rules: RulesSection = Field(default_factory=RulesSection.model_construct)
    priority: PrioritySection = Field(default_factory=PrioritySection.model_construct)
    cycle: CycleSection = Field(default_factory=CycleSection.model_construct)
    attachments: AttachmentsSection = Field(default_factory=AttachmentsSection.model_construct)
    notifications: NotificationsSection = Field(default_factory=NotificationsSection.model_construct)
    scheduler: SchedulerSection = Field(default_factory=SchedulerSection.model_construct)
    escalation: EscalationSection = Field(default_factory=EscalationSection.model_construct)
    cadence: dict[str, CadenceSection] = Field(default_factory=dict)
    segments: dict[str, SegmentSection] = Field(default_factory=dict)
    signing: SigningSection = Field(default_factory=SigningSection.model_construct)
    web: WebSection = Field(default_factory=WebSection.model_construct)
    limits: LimitsSection = Field(default_factory=LimitsSection.model_construct)

    def role_problems(self, known: tuple[str, ...]) -> list[tuple[tuple[str | int, ...], str]]:
        """Roles in the matrix and the ladder that are neither `known` nor a `[notifications.roles]` list."""
        return role_problems(self.notifications, self.escalation, known)


def role_problems(
    notifications: NotificationsSection, escalation: EscalationSection, known: tuple[str, ...]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Roles in the matrix and the ladder that are neither `known` nor a `[notifications.roles]` list."""
    roles = (*known, *notifications.roles)
    used: list[tuple[tuple[str | int, ...], str]] = [
        (("notifications", "matrix", severity), role)
        for severity, names in notifications.matrix.items()
        for role in names
    ]
    used += [(("escalation", "ladder", n, "role"), step.role) for n, step in enumerate(escalation.ladder)]
    unknown = [(loc, role) for loc, role in used if role not in roles]
    if not unknown:
        return []
    from pulsecheck.yamlfile import suggest  # with YAML: only when there is something to suggest

    return [(loc, f"unknown role {role!r}{suggest(role, roles)}") for loc, role in unknown]
