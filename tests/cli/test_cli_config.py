"""`config show`, settings errors as the CLI reports them, and the note about the default log channel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Factory

Run = Any
NOTE = "note: notifications go to the log channel (no [notifications] channel set in any settings file)"


@pytest.fixture(autouse=True)
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The system and user files in tmp dirs, the working directory a project dir: no real settings leak in."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("PULSECHECK_SYSTEM_CONFIG", str(tmp_path / "etc.toml"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "pulsecheck").mkdir(parents=True)
    return {
        "system": tmp_path / "etc.toml",
        "user": tmp_path / "xdg" / "pulsecheck" / "pulsecheck.toml",
        "project": project / "pulsecheck.toml",
    }


def shown(run: Run, *flags: str) -> dict[str, tuple[Any, str]]:
    result = run(*flags, "config", "show", "--json")
    assert result.exit_code == 0, result.output
    return {row["key"]: (row["value"], row["origin"]) for row in json.loads(result.stdout)}


def one_error(result: Any) -> str:
    """The single `error:` line of a failed command that printed nothing else."""
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    assert result.stderr.count("\n") == 1
    return str(result.stderr).removeprefix("error: ").rstrip("\n")


def test_config_show_names_the_origin_of_every_setting(
    run: Run, places: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    places["system"].write_text('timezone = "Europe/Berlin"\n[scheduler]\nmax_reminders = 1\n')
    places["user"].write_text("[scheduler]\nmax_reminders = 7\n")
    places["project"].write_text('[notifications]\nchannel = "file"\n[notifications.file]\npath = "out.jsonl"\n')
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("[rules]\nworkers = 4\n")
    monkeypatch.setenv("PULSECHECK_REVIEW__DUE_IN", "3d")
    settings = shown(run, "--config", str(explicit), "--db", "sqlite:///flag.db", "--as", "olga")
    assert settings["timezone"] == ("Europe/Berlin", str(places["system"]))
    assert settings["scheduler.max_reminders"] == (7, str(places["user"]))
    assert settings["notifications.channel"] == ("file", "pulsecheck.toml")
    assert settings["notifications.file.path"] == ("out.jsonl", "pulsecheck.toml")
    assert settings["review.due_in"] == ("3d", "PULSECHECK_REVIEW__DUE_IN")
    assert settings["rules.workers"] == (4, str(explicit))
    assert settings["database_url"] == ("sqlite:///flag.db", "--db")
    assert settings["user"] == ("olga", "--as")
    assert settings["review.cadence_due_in"] == ("2w", "default")
    assert settings["escalation.ladder"] == (
        [{"role": "owner", "after": "0s"}, {"role": "manager", "after": "2d"}, {"role": "head_of_cs", "after": "5d"}],
        "default",
    )


def test_config_show_prints_aligned_lines(run: Run, places: dict[str, Path]) -> None:
    places["user"].write_text("[scheduler]\nmax_reminders = 7\n")
    result = run("config", "show")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    row = next(line for line in lines if line.startswith("scheduler.max_reminders "))
    assert row.split() == ["scheduler.max_reminders", "7", str(places["user"])]
    starts = {line.split()[0]: line.index(line.split()[1], len(line.split()[0])) for line in lines}
    assert len(set(starts.values())) == 1  # values start in one column


def test_secrets_never_appear_only_the_names_of_their_variables(
    run: Run, places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    places["project"].write_text(
        '[notifications.email]\nhost = "smtp.example.com"\nfrom = "pc@example.com"\nusername = "pc"\n'
        'password_env = "PC_SMTP_SECRET"\n'
        '[notifications.webhook]\nurl = "https://hooks.example.com/services/SENTINEL-HOOK-PATH"\n'
        'token_env = "PC_HOOK_TOKEN"\n'
    )
    monkeypatch.setenv("PC_SMTP_SECRET", "SENTINEL-PASSWORD")
    monkeypatch.setenv("PC_HOOK_TOKEN", "SENTINEL-TOKEN")
    db = "postgresql://pc:SENTINEL-DB-PASSWORD@127.0.0.1/pulsecheck"
    for flags in ((), ("--json",)):
        result = run("--db", db, "config", "show", *flags)
        assert result.exit_code == 0, result.output
        assert "SENTINEL" not in result.output
        assert "PC_SMTP_SECRET" in result.output and "PC_HOOK_TOKEN" in result.output
    settings = shown(run, "--db", db)
    assert settings["notifications.email.password_env"] == ("PC_SMTP_SECRET", "pulsecheck.toml")
    assert settings["notifications.webhook.url"] == ("https://hooks.example.com/***", "pulsecheck.toml")
    assert settings["database_url"] == ("postgresql://pc:***@127.0.0.1/pulsecheck", "--db")


def test_an_unknown_section_is_one_error_line_with_a_suggestion(run: Run, places: dict[str, Path]) -> None:
    places["project"].write_text('[notification]\nchannel = "file"\n')
    assert one_error(run("config", "show")) == (
        "pulsecheck.toml: [notification]: unknown section (did you mean [notifications]?)"
    )


def test_a_role_list_naming_an_unknown_user_is_refused_when_the_database_opens(
    run: Run, places: dict[str, Path], factory: Factory
) -> None:
    factory.user("diana", "head_of_cs")
    places["user"].write_text('[notifications.roles]\nhead_of_cs = ["diana", "dianna"]\n')
    assert one_error(run("outbox", "list")) == (
        f"{places['user']}: [notifications.roles] head_of_cs: unknown user 'dianna' (did you mean 'diana'?)"
    )
    added = run("users", "add", "dianna", "--role", "head_of_cs")  # the way to fix it stays open
    assert added.exit_code == 0, added.output
    listed = run("outbox", "list")
    assert listed.exit_code == 0, listed.output


def test_a_bad_setting_stops_review_withdraw_before_anything_changes(
    run: Run, places: dict[str, Path], factory: Factory
) -> None:
    """Regression: a bad [scheduler] max_reminders made `review withdraw` print success, exit 2 and leave the
    review unchanged (the settings were parsed inside the commit)."""
    factory.team()
    review_id = factory.review()
    places["project"].write_text('[scheduler]\nmax_reminders = "three"\n')
    result = run("--as", "maria", "review", "withdraw", str(review_id), "--comment", "duplicate")
    assert one_error(result) == "pulsecheck.toml: [scheduler] max_reminders: expected a whole number, got 'three'"
    assert factory.state(review_id) == "draft"
    places["project"].unlink()
    result = run("--as", "maria", "review", "withdraw", str(review_id), "--comment", "duplicate")
    assert result.exit_code == 0, result.output
    assert factory.state(review_id) == "closed"


def test_sending_commands_say_once_that_the_log_channel_is_a_default(run: Run, places: dict[str, Path]) -> None:
    dispatched = run("outbox", "dispatch")
    assert dispatched.exit_code == 0, dispatched.output
    assert dispatched.stderr == NOTE + "\n"
    once = run("scheduler", "run", "--once")
    assert once.exit_code == 0, once.output
    assert once.stderr == NOTE + "\n"
    places["system"].write_text('[notifications]\nchannel = "log"\n')  # chosen: nothing to say
    for args in (("outbox", "dispatch"), ("scheduler", "run", "--once")):
        result = run(*args)
        assert (result.exit_code, result.stderr) == (0, ""), result.output
