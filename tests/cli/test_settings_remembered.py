"""Settings an earlier command validated are remembered (`config/checked.py`, in the user's cache directory): the
next command with the same values neither validates them again nor imports what validating needs; a changed
value is validated in full, a refused file is never remembered, and a cache that cannot be used changes nothing a
user sees. Behaviour: exit codes, `error:` lines, output, and the modules read from the child's `-X importtime`
log (as tests/cli/test_cold_start_imports.py reads them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import NamedTuple

import pytest

from pulsecheck.demo import examples_dir
from tests.conftest import Factory, error, ok, page_items

PULSECHECK = Path(sys.executable).with_name("pulsecheck")
SAMPLE = examples_dir() / "pulsecheck.toml"
# What validating the sample needs: the typed models, pydantic, and APScheduler's trigger for its crontab lines.
VALIDATORS = ("pydantic", "pulsecheck.config.sections", "apscheduler")
MAX_REMINDERS = "max_reminders = 3 "  # the sample's line, up to its comment


class Ran(NamedTuple):
    """A finished `pulsecheck` child: what a user sees (the `-X importtime` lines taken out of stderr), and the
    modules it imported."""

    done: subprocess.CompletedProcess[str]
    modules: set[str]

    def loaded(self, name: str) -> bool:
        return any(module == name or module.startswith(name + ".") for module in self.modules)

    def validators(self) -> list[str]:
        return [name for name in VALIDATORS if self.loaded(name)]


class Project(NamedTuple):
    """A working directory holding a copy of the sample settings file, the cache directory (XDG_CACHE_HOME) and
    the environment the commands run in."""

    directory: Path
    settings: Path
    cache: Path
    env: dict[str, str]

    def run(self, *args: str, **extra_env: str) -> Ran:
        env = {**self.env, **extra_env}
        done = subprocess.run([sys.executable, "-X", "importtime", str(PULSECHECK), *args], capture_output=True,
                              text=True, env=env, timeout=120, cwd=self.directory)
        lines = done.stderr.splitlines(keepends=True)
        times = [line for line in lines if line.startswith("import time:")]
        modules = {line.rsplit("|", 1)[1].strip() for line in times if "|" in line and "self [us]" not in line}
        shown = "".join(line for line in lines if not line.startswith("import time:"))
        return Ran(subprocess.CompletedProcess(done.args, done.returncode, done.stdout, shown), modules)

    def edit(self, old: str, new: str) -> None:
        text = self.settings.read_text(encoding="utf-8")
        assert text.count(old) == 1, old
        self.settings.write_text(text.replace(old, new), encoding="utf-8")

    def records(self) -> list[Path]:
        """The records in the documented place: `$XDG_CACHE_HOME/pulsecheck/settings`."""
        return sorted((self.cache / "pulsecheck" / "settings").glob("*.json"))


@pytest.fixture
def project(tmp_path: Path, db_url: str) -> Project:
    """The sample settings in ./pulsecheck.toml, no system or user file, the cache under tmp_path; the database is
    the test's (PULSECHECK_DATABASE_URL beats the sample's `database_url`)."""
    directory = tmp_path / "project"
    directory.mkdir()
    settings = directory / "pulsecheck.toml"
    shutil.copyfile(SAMPLE, settings)
    cache = tmp_path / "cache"
    env = {name: value for name, value in os.environ.items() if not name.startswith("PULSECHECK_")}
    env.update(PULSECHECK_DATABASE_URL=db_url, PULSECHECK_SYSTEM_CONFIG="", XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_CACHE_HOME=str(cache), PYTHONDONTWRITEBYTECODE="1")
    return Project(directory, settings, cache, env)


@pytest.fixture
def team(factory: Factory, os_login_admin: str) -> None:
    """The usual team, diana (the sample's `[notifications.roles] head_of_cs`) and one open review to list."""
    factory.team()
    factory.user("diana", "manager")
    factory.review("ACME")


def test_a_second_command_with_the_same_settings_validates_nothing_and_prints_the_same(
    project: Project, team: None
) -> None:
    first = project.run("review", "list", "--json")
    assert len(page_items(first.done)) == 1
    assert first.validators() == list(VALIDATORS)  # it validated the file (crontab lines included)
    assert len(project.records()) == 1  # ... and remembered it where XDG_CACHE_HOME says
    second = project.run("review", "list", "--json")
    assert "pulsecheck.workflow.chaincheck" in second.modules  # the command did its work (checked the review)
    assert second.validators() == []
    assert ok(second.done) == ok(first.done)
    assert len(project.records()) == 1


def test_a_comment_is_no_change_and_a_changed_value_is_validated_and_used(project: Project, team: None) -> None:
    listed = ok(project.run("review", "list", "--json").done)
    project.edit("[scheduler]\n", "# reminders, edited\n[scheduler]\n")  # the same values
    again = project.run("review", "list", "--json")
    assert (ok(again.done), again.validators()) == (listed, [])
    project.edit(MAX_REMINDERS, "max_reminders = 7 ")  # another value: validated in full
    changed = project.run("review", "list", "--json")
    assert (ok(changed.done), changed.validators()) == (listed, list(VALIDATORS))
    rows = json.loads(ok(project.run("config", "show", "--json").done))
    assert {row["key"]: (row["value"], row["origin"]) for row in rows}["scheduler.max_reminders"] == (
        7, "pulsecheck.toml",
    )  # fmt: skip


def test_config_show_of_remembered_settings_is_that_of_validated_ones(project: Project, team: None) -> None:
    """Every section typed when first read from a remembered file shows what validation gave the first time."""
    validated = ok(project.run("config", "show", "--json").done)
    assert ok(project.run("config", "show", "--json").done) == validated
    # the comparison covers every section the sample sets a key of (the database URL is the variable's)
    sample = tomllib.loads(SAMPLE.read_text(encoding="utf-8"))
    shown = {row["key"].split(".")[0] for row in json.loads(validated) if row["origin"] == "pulsecheck.toml"}
    assert shown == {name for name, value in sample.items() if sets_a_key(value)} - {"database_url"}


def sets_a_key(value: object) -> bool:
    """Whether a TOML value is, or holds, something other than a table (`[segments.smb]` with no key holds none)."""
    return not isinstance(value, dict) or any(sets_a_key(item) for item in value.values())


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (MAX_REMINDERS, 'max_reminders = "x" ',
         "pulsecheck.toml: [scheduler] max_reminders: expected a whole number, got 'x'"),
        (MAX_REMINDERS, "max_reminderz = 3 ",
         "pulsecheck.toml: [scheduler] max_reminderz: unknown key (did you mean 'max_reminders'?)"),
        # an empty list where an empty table was: another value, though both are empty
        ("trusted_proxies = []", "trusted_proxies = {}",
         "pulsecheck.toml: [web] trusted_proxies: expected a list of names, got {}"),
    ],
    ids=["wrong type", "unknown key", "empty table for empty list"],
)
def test_an_invalid_edit_after_a_remembered_run_is_refused_every_time(
    project: Project, team: None, old: str, new: str, problem: str
) -> None:
    listed = ok(project.run("review", "list", "--json").done)
    assert project.run("review", "list", "--json").validators() == []  # remembered
    original = project.settings.read_text(encoding="utf-8")
    project.edit(old, new)
    for _ in range(2):  # the refusal is not remembered: refused again, with the same line
        refused = project.run("review", "list", "--json")
        assert error(refused.done, 2) == f"error: {problem}"
    project.settings.write_text(original, encoding="utf-8")
    back = project.run("review", "list", "--json")
    assert (ok(back.done), back.validators()) == (listed, [])  # the good values are still remembered


@pytest.mark.parametrize("where", ["XDG_CACHE_HOME", "XDG_CACHE_HOME/pulsecheck/settings"])
def test_a_cache_that_cannot_be_written_changes_nothing_visible(project: Project, team: None, where: str) -> None:
    """A regular file where the cache directory (or the records' directory) should be: every command validates
    (nothing can be remembered) and works; the file is left alone."""
    blocker = project.cache if where == "XDG_CACHE_HOME" else project.cache / "pulsecheck" / "settings"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory\n", encoding="utf-8")
    first = project.run("review", "list", "--json")
    second = project.run("review", "list", "--json")
    assert len(page_items(first.done)) == 1 and ok(second.done) == ok(first.done)
    assert second.validators() == list(VALIDATORS)  # nothing was remembered
    assert blocker.read_text(encoding="utf-8") == "not a directory\n"
    project.edit(MAX_REMINDERS, 'max_reminders = "x" ')
    line = error(project.run("review", "list", "--json").done, 2)
    assert line == "error: pulsecheck.toml: [scheduler] max_reminders: expected a whole number, got 'x'"


def test_the_role_users_are_checked_by_every_command_remembered_or_not(
    project: Project, factory: Factory, os_login_admin: str
) -> None:
    factory.team()  # no diana, whom the sample's [notifications.roles] head_of_cs names
    refusal = "error: pulsecheck.toml: [notifications.roles] head_of_cs: unknown user 'diana'"
    first = project.run("review", "list", "--json")
    assert error(first.done, 2).startswith(refusal)
    second = project.run("review", "list", "--json")
    assert error(second.done, 2) == error(first.done, 2)
    assert second.validators() == []  # remembered values: the names are checked without typing the section
    ok(project.run("users", "add", "diana", "--role", "manager").done)  # `users` is not held up by the check
    assert page_items(project.run("review", "list", "--json").done) == []


@pytest.mark.parametrize(
    ("blank", "origin"),
    [("file", "pulsecheck.toml"), ("empty", "pulsecheck.toml"), ("variable", "PULSECHECK_SIGNING__KEY")],
)
def test_a_blank_signing_key_is_refused_by_every_command(
    project: Project, team: None, blank: str, origin: str
) -> None:
    extra: dict[str, str] = {}
    if blank == "variable":
        extra["PULSECHECK_SIGNING__KEY"] = "  "
    else:
        project.edit("\n[signing]", f'\n[signing]\nkey = "{"  " if blank == "file" else ""}"')
    lines = [error(project.run("review", "list", "--json", **extra).done, 2) for _ in range(2)]
    assert lines[0] == lines[1] == f"error: {origin}: [signing] key: must not be empty"
    assert project.records() == []  # nothing of it remembered
