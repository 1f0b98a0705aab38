"""Settings: layers (system < user < project < environment < --config and flags), validation, origins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pulsecheck.config import Settings, SettingsFiles, load_settings
from pulsecheck.errors import InputError
from pulsecheck.notifications.dispatch import RetryPolicy
from pulsecheck.notifications.outbox import Routing
from pulsecheck.rules.priority import PriorityMatrix
from pulsecheck.scheduling.specs import ScheduleSettings
from pulsecheck.workflow.cycles.service import CycleSettings
from pulsecheck.workflow.evaluation import EvaluationSettings


@pytest.fixture
def layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """One file per layer in tmp dirs: the system file, the user file (XDG_CONFIG_HOME), ./pulsecheck.toml, and
    a --config file; the working directory is the project's."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "pulsecheck").mkdir(parents=True)
    return {
        "system": tmp_path / "system.toml",
        "user": tmp_path / "xdg" / "pulsecheck" / "pulsecheck.toml",
        "project": project / "pulsecheck.toml",
        "config": tmp_path / "explicit.toml",
    }


def load(layers: dict[str, Path], env: dict[str, str] | None = None, **flags: str) -> Settings:
    """Settings found as the CLI finds them, with the system file at its test path."""
    return load_settings(env={"PULSECHECK_SYSTEM_CONFIG": str(layers["system"]), **(env or {})}, **flags)


def failure(layers: dict[str, Path], toml: str, env: dict[str, str] | None = None) -> str:
    """The error of a project file holding `toml`."""
    layers["project"].write_text(toml, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load(layers, env)
    return str(caught.value)


def test_each_layer_wins_over_the_one_below(layers: dict[str, Path]) -> None:
    for n, name in enumerate(("system", "user", "project", "config"), start=1):
        layers[name].write_text(f"[scheduler]\nmax_reminders = {n * 10}\n", encoding="utf-8")
    env = {"PULSECHECK_SCHEDULER__MAX_REMINDERS": "35"}

    def effective(settings: Settings) -> tuple[int, str]:
        return settings.scheduler.max_reminders, settings.origin("scheduler", "max_reminders")

    assert effective(load(layers, env, config=str(layers["config"]))) == (40, str(layers["config"]))
    assert effective(load(layers, env)) == (35, "PULSECHECK_SCHEDULER__MAX_REMINDERS")
    assert effective(load(layers)) == (30, "pulsecheck.toml")
    layers["project"].unlink()
    assert effective(load(layers)) == (20, str(layers["user"]))
    layers["user"].unlink()
    assert effective(load(layers)) == (10, str(layers["system"]))
    layers["system"].unlink()
    assert effective(load(layers)) == (3, "default")


def test_tables_merge_key_by_key_and_each_key_keeps_its_origin(layers: dict[str, Path]) -> None:
    layers["system"].write_text('[notifications]\nchannel = "email"\nmax_attempts = 9\n', encoding="utf-8")
    layers["user"].write_text('[notifications.email]\nhost = "smtp.example.com"\nport = 2525\n', encoding="utf-8")
    layers["project"].write_text("[notifications]\nmax_attempts = 2\n[notifications.email]\nport = 25\n")
    settings = load(layers)
    notifications = settings.notifications
    assert (notifications.channel, notifications.max_attempts) == ("email", 2)
    assert notifications.channel_options("email") == {"host": "smtp.example.com", "port": 25}
    assert settings.origin("notifications", "channel") == str(layers["system"])
    assert settings.origin("notifications", "email", "host") == str(layers["user"])
    assert settings.origin("notifications", "email", "port") == "pulsecheck.toml"
    assert settings.origin("notifications", "retry_base") == "default"


def test_the_user_file_is_under_home_without_xdg_config_home(
    layers: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    user_file = tmp_path / "home" / ".config" / "pulsecheck" / "pulsecheck.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text('timezone = "Asia/Tokyo"\n', encoding="utf-8")
    settings = load(layers)
    assert (settings.timezone, settings.origin("timezone")) == ("Asia/Tokyo", str(user_file))


def test_flags_beat_the_environment_which_beats_files(layers: dict[str, Path]) -> None:
    layers["project"].write_text('database_url = "sqlite:///file.db"\ntimezone = "Europe/Paris"\n')
    env = {"PULSECHECK_DATABASE_URL": "sqlite:///env.db", "PULSECHECK_TIMEZONE": "Europe/Berlin"}
    settings = load(layers, env)
    assert (settings.database_url, settings.origin("database_url")) == ("sqlite:///env.db", "PULSECHECK_DATABASE_URL")
    assert (settings.timezone, settings.origin("timezone")) == ("Europe/Berlin", "PULSECHECK_TIMEZONE")
    settings = load(layers, env, db="sqlite:///flag.db")
    assert (settings.database_url, settings.origin("database_url")) == ("sqlite:///flag.db", "--db")


def test_environment_values_are_read_as_toml_values_where_the_key_is_not_text(layers: dict[str, Path]) -> None:
    env = {
        "PULSECHECK_NOTIFICATIONS__ROLES__HEAD_OF_CS": '["diana", "erik"]',
        "PULSECHECK_NOTIFICATIONS__EMAIL__STARTTLS": "true",
        "PULSECHECK_SCHEDULER__REMINDER_EVERY": "3d",
        "PULSECHECK_SCORING__MODEL": "2026",  # text: stays text
        "PULSECHECK_SMTP_PASSWORD": "not a setting",  # a single-word variable that is not a key is not read
    }
    settings = load(layers, env)
    assert settings.notifications.roles == {"head_of_cs": ["diana", "erik"]}
    assert settings.notifications.channel_options("email") == {"starttls": True}
    assert (settings.scheduler.reminder_every, settings.scoring.model) == (timedelta(days=3), "2026")


def test_the_user_and_the_clock_keep_their_variables(layers: dict[str, Path]) -> None:
    layers["project"].write_text('timezone = "Europe/Berlin"\n')
    settings = load(layers, {"PULSECHECK_USER": "maria", "PULSECHECK_NOW": "2026-11-24T09:00"})
    assert (settings.user, settings.origin("user")) == ("maria", "PULSECHECK_USER")
    assert settings.now() == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # naive: in the business time zone
    assert load(layers, {"PULSECHECK_USER": "maria"}, user="olga").user == "olga"


# (the project file, its error after "pulsecheck.toml: ")
BAD = [
    ('[notification]\nchannel = "file"\n', "[notification]: unknown section (did you mean [notifications]?)"),
    ('[review]\ndue = "3d"\n', "[review] due: unknown key (did you mean 'due_in'?)"),
    ('timezon = "UTC"\n', "timezon: unknown key (did you mean 'timezone'?)"),
    (
        "[cadence.smb]\nshedule = 'monthly'\n",
        "[cadence.smb] shedule: unknown key (did you mean 'schedule'?) (and 1 more problem(s))",
    ),
    (
        '[notifications.roles]\nhead_of_cs = "diana"\n',
        "[notifications.roles] head_of_cs: expected a list of names, got 'diana'",
    ),
    ("[notifications.roles]\nhead_of_cs = [1]\n", "[notifications.roles] head_of_cs[0]: expected text, got 1"),
    ("[review]\ndue_in = -5\n", "[review] due_in: a duration cannot be negative, got -5"),
    ('[review]\ndue_in = "-5d"\n', "[review] due_in: expected a duration like 7d, 12h or 2w, got '-5d'"),
    ('[scheduler]\nmax_reminders = "3"\n', "[scheduler] max_reminders: expected a whole number, got '3'"),
    ("[scheduler]\nmax_reminders = -1\n", "[scheduler] max_reminders: must be at least 0, got -1"),
    (
        '[scheduler]\nnext_review_at = "9am"\n',
        "[scheduler] next_review_at: expected a time of day like 09:00, got '9am'",
    ),
    ('[scheduler]\ndispatch_every = "0s"\n', "[scheduler] dispatch_every: must be longer than 0s"),
    (
        '[notifications]\nchannel = "emial"\n',
        "[notifications] channel: expected 'log', 'file', 'email' or 'webhook', got 'emial' (did you mean 'email'?)",
    ),
    ('[priority]\nbase = {high = "P5"}\n', "[priority.base] high: expected 'P1', 'P2', 'P3' or 'P4', got 'P5'"),
    ('timezone = "Europe/Berln"\n', "timezone: unknown time zone 'Europe/Berln'"),
    ("[cadence.smb]\ndue_in = '7d'\n", "[cadence.smb] schedule: required"),
    (
        '[notifications.matrix]\nhigh = ["owner", "managr"]\n',
        "[notifications.matrix] high: unknown role 'managr' (did you mean 'manager'?)",
    ),
    (
        '[escalation]\nladder = [{role = "owner"}, {role = "head_of_sc", after = "2d"}]\n',
        "[escalation] ladder[1].role: unknown role 'head_of_sc' (did you mean 'head_of_cs'?)",
    ),
    (
        '[escalation]\nladder = [{role = "owner", after = "2d"}, {role = "manager", after = "1d"}]\n',
        "[escalation] ladder: steps must come in the order of their `after`",
    ),
    (
        '[scheduler]\nevaluate = "every morning"\n',
        "[scheduler] evaluate: 'every morning' is not weekly, monthly, quarterly or a crontab line: "
        "Wrong number of fields; got 2, expected 5",
    ),
    ("[notifications.email]\nport = 0\n", "[notifications.email] port: must be at least 1, got 0"),
    ("[rules]\nworkers = 0\n", "[rules] workers: must be at least 1, got 0"),
    (
        '[notifications.routes]\nreminder = ["emial"]\n',
        "[notifications.routes.reminder]: unknown channel 'emial' (valid: log, file, email, webhook)",
    ),
    (
        '[notifications.routes]\nescalation = {critcal = ["email"]}\n',
        "[notifications.routes.escalation]: unknown severity 'critcal' (valid: default, critical, high, medium, low)",
    ),
    (
        "[notifications.routes]\nreminder = []\n",
        '[notifications.routes.reminder]: expected a list of channels like ["email", "webhook"], got []',
    ),
    ("[priority]\np1_share = 1.5\n", "[priority] p1_share: must be at most 1.0, got 1.5"),
    ("[notifications]\nbudget = 0\n", "[notifications] budget: must be at least 1, got 0"),
]


@pytest.mark.parametrize(("toml", "message"), BAD)
def test_a_bad_setting_is_one_error_naming_the_file_and_key(layers: dict[str, Path], toml: str, message: str) -> None:
    assert failure(layers, toml) == f"pulsecheck.toml: {message}"


def test_several_problems_are_counted_in_one_line(layers: dict[str, Path]) -> None:
    message = failure(layers, "[review]\ndue_in = -1\ncadence_due_in = -2\n")
    assert message == "pulsecheck.toml: [review] due_in: a duration cannot be negative, got -1 (and 1 more problem(s))"


def test_a_role_list_s_name_is_a_role_of_the_matrix_and_ladder(layers: dict[str, Path]) -> None:
    layers["project"].write_text(
        '[notifications.roles]\nexec = ["ceo"]\n[notifications.matrix]\ncritical = ["exec"]\n'
        '[escalation]\nladder = [{role = "owner"}, {role = "exec", after = "3d"}]\n'
    )
    settings = load(layers)
    assert settings.notifications.matrix == {"critical": ["exec"]}
    assert ScheduleSettings.from_settings(settings).ladder[1].role == "exec"


def test_an_environment_variable_error_names_the_variable(layers: dict[str, Path]) -> None:
    message = failure(layers, "", {"PULSECHECK_SCHEDULER__MAX_REMINDERS": "many"})
    assert message == (
        "PULSECHECK_SCHEDULER__MAX_REMINDERS: [scheduler] max_reminders: expected a whole number, got 'many'"
    )
    message = failure(layers, "", {"PULSECHECK_NOTIFICATION__CHANNEL": "file"})
    assert message == "PULSECHECK_NOTIFICATION__CHANNEL: unknown section 'notification' (did you mean 'notifications'?)"


def test_a_named_config_file_must_exist(layers: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^--config nope.toml: no such file$"):
        load(layers, config="nope.toml")
    with pytest.raises(InputError, match=r"^PULSECHECK_CONFIG=nope.toml: no such file$"):
        load(layers, {"PULSECHECK_CONFIG": "nope.toml"})
    layers["project"].write_text("[review\n")
    with pytest.raises(InputError, match=r"^pulsecheck.toml: invalid TOML: "):
        load(layers)


def test_secrets_are_read_from_the_variables_the_file_names_and_kept_apart(layers: dict[str, Path]) -> None:
    layers["project"].write_text('[notifications.email]\npassword_env = "SMTP_SECRET"\n')
    settings = load(layers, {"SMTP_SECRET": "s3cret-4711"})
    assert settings.secrets == {"SMTP_SECRET": "s3cret-4711"}
    assert "s3cret-4711" not in repr(settings.origins) + repr(settings.notifications)


def test_the_defaults_are_the_domain_objects_defaults() -> None:
    """Built from nothing but defaults, every part gets the objects it would build with no settings at all."""
    settings = load_settings(env={}, files=SettingsFiles())
    assert ScheduleSettings.from_settings(settings) == ScheduleSettings(tz=ZoneInfo("UTC"))
    assert EvaluationSettings.from_settings(settings) == EvaluationSettings()
    assert CycleSettings.from_settings(settings) == CycleSettings(tz=ZoneInfo("UTC"))
    assert RetryPolicy.from_settings(settings) == RetryPolicy()
    assert Routing.from_settings(settings) == Routing()
    assert settings.priority_matrix() == PriorityMatrix()
    assert PriorityMatrix.of(settings.priority.model_dump()) == PriorityMatrix()  # the section's defaults are its
    assert set(settings.origins) == {("user",)}  # everything else is a default


def test_a_partial_priority_base_keeps_the_other_severities(layers: dict[str, Path]) -> None:
    layers["project"].write_text('[priority]\nbase = {high = "P1"}\n')
    assert load(layers).priority_matrix().base == {"critical": "P1", "high": "P1", "medium": "P3", "low": "P4"}


def test_the_log_channel_note_only_when_no_layer_chose_a_channel(layers: dict[str, Path]) -> None:
    assert load(layers).log_channel_note() == (
        "note: notifications go to the log channel (no [notifications] channel set in any settings file)"
    )
    layers["user"].write_text('[notifications]\nchannel = "log"\n')
    assert load(layers).log_channel_note() is None  # chosen: nothing to say


def test_a_settings_file_that_is_not_utf8_or_not_a_regular_file_is_one_error(tmp_path, monkeypatch) -> None:
    import pytest

    from pulsecheck.config import load_settings
    from pulsecheck.errors import InputError

    bad = tmp_path / "latin1.toml"
    bad.write_bytes('timezone = "Europe/Z\xfcrich"\n'.encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.toml: .*(UTF-8|utf-8)"):
        load_settings(config=str(bad), env={})
    with pytest.raises(InputError, match=r"/dev/zero"):
        load_settings(config="/dev/zero", env={})


def test_routes_name_a_kind_group_or_a_kind(layers: dict[str, Path]) -> None:
    message = failure(layers, '[notifications.routes]\nremind = ["email"]\n')
    assert message.startswith("pulsecheck.toml: [notifications.routes]: unknown route 'remind' (valid: escalation, ")
    layers["project"].write_text(
        '[notifications]\nchannel = "file"\n[notifications.routes]\nreminder = ["email"]\n'
        'escalation = {default = ["email"], critical = ["email", "webhook"]}\n'
    )
    routing = Routing.from_settings(load(layers))
    assert routing.channels("review_due") == routing.channels("review_overdue") == ["email"]
    assert routing.channels("escalation_opened", "high") == ["email"]
    assert routing.channels("escalation_level_up", "critical") == ["email", "webhook"]
    assert routing.channels("review_submitted") == routing.channels("generic", "critical") == ["file"]


def test_the_top_level_keys_known_without_the_models_are_the_models() -> None:
    """`config.defaults` (read before, and often instead of, the typed models) says what `SettingsFile` says."""
    from pulsecheck.config.defaults import PLAIN_TEXT, TOP_LEVEL
    from pulsecheck.config.layers import _is_table, _unwrap
    from pulsecheck.config.sections import SettingsFile

    fields = SettingsFile.model_fields
    top = {name: field for name, field in fields.items() if not _is_table(field.annotation)}
    assert {name: field.default for name, field in top.items()} == TOP_LEVEL
    assert all(_unwrap(field.annotation) is str for field in top.values())  # every top-level key is text
    assert {name for name, field in top.items() if field.annotation is str and not field.metadata} == PLAIN_TEXT


def test_settings_read_a_section_nobody_set_as_its_defaults_and_stay_read_only(layers: dict[str, Path]) -> None:
    from pulsecheck.config.sections import SettingsFile

    settings = load(layers)
    defaults = SettingsFile()
    for name in SettingsFile.model_fields:
        assert getattr(settings, name) == getattr(defaults, name)
    assert settings.is_default("scheduler") and settings.is_default("notifications", "roles")
    layers["project"].write_text("[scheduler]\nmax_reminders = 5\n")
    settings = load(layers)
    assert settings.scheduler.max_reminders == 5 and not settings.is_default("scheduler")
    assert settings.is_default("scheduler", "reminder_every")
    with pytest.raises(AttributeError):
        settings.timezone = "Europe/Berlin"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        _ = settings.no_such_key
