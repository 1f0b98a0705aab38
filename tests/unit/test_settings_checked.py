"""Remembered settings (`config/checked.py`, `load_settings(remembered=DIR)`): a load of values validated before
gives what a fresh validation gives; a record that cannot be read is no record; a directory that cannot be
written keeps nothing and fails nothing; the newest records stay; the digest tells every value apart and no key
order. Expected values come from a fresh load (`remembered=None`) or from the file's own text, not from the
remembered path."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pulsecheck.config import Settings, SettingsFiles, checked, load_settings
from pulsecheck.config.defaults import TOP_LEVEL
from pulsecheck.config.layers import Merged
from pulsecheck.config.sections import SettingsFile
from pulsecheck.demo import examples_dir
from pulsecheck.errors import InputError

SAMPLE = examples_dir() / "pulsecheck.toml"
NOW = "2026-11-24T09:00:00+00:00"
INVALID = '[scheduler]\nmax_reminders = "x"\n'
INVALID_LINE = "[scheduler] max_reminders: expected a whole number, got 'x'"

Validations = list[frozenset[str] | None]


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> Validations:
    """The `keys` of every `Merged.validate` call: None is a validation of all the values (what a load does when
    it has no record of them), a set one section typed when first read."""
    calls: Validations = []
    validate = Merged.validate

    def spy(self: Merged, keys: frozenset[str] | None = None) -> dict[str, Any]:
        calls.append(keys)
        return validate(self, keys)

    monkeypatch.setattr(Merged, "validate", spy)
    return calls


def secret_names(path: Path) -> list[str]:
    """The variables a settings file names for the channels' secrets, read from its text."""
    notifications = tomllib.loads(path.read_text(encoding="utf-8")).get("notifications", {})
    names = [notifications.get("email", {}).get("password_env"), notifications.get("webhook", {}).get("token_env")]
    return [name for name in names if name]


def sample_env() -> dict[str, str]:
    """An acting user, the fixed clock, a layer from a variable, and a value for each secret variable the sample
    names (if it names any)."""
    env = {"PULSECHECK_USER": "olga", "PULSECHECK_NOW": NOW, "PULSECHECK_RULES__WORKERS": "3"}
    return {**env, **{name: f"secret of {name}" for name in secret_names(SAMPLE)}}


def test_a_remembered_load_of_the_sample_is_a_fresh_validation(tmp_path: Path, validations: Validations) -> None:
    files, env = SettingsFiles(project=SAMPLE), sample_env()
    fresh = load_settings(files=files, env=env, remembered=None)
    first = load_settings(files=files, env=env, remembered=tmp_path)
    assert validations == [None, None]  # both validated (the first one remembered)
    del validations[:]
    hit = load_settings(files=files, env=env, remembered=tmp_path)
    assert validations == []  # taken as remembered: nothing validated
    roles = hit.role_lists()  # before any section is read: the lists, without typing [notifications]
    assert validations == []
    assert roles == fresh.notifications.roles == {"head_of_cs": ["diana"]}
    for name in SettingsFile.model_fields:
        assert getattr(hit, name) == getattr(fresh, name) == getattr(first, name), name
        assert type(getattr(hit, name)) is type(getattr(fresh, name)), name
    assert hit.role_lists() == fresh.role_lists() == roles  # and once [notifications] is typed
    # each section the file sets typed once, when first read; the top-level keys are text
    sections = [name for name in tomllib.loads(SAMPLE.read_text(encoding="utf-8")) if name not in TOP_LEVEL]
    assert sorted(sorted(keys or ["(all)"]) for keys in validations) == [[name] for name in sorted(sections)]
    assert hit.rules.workers == 3 and hit.origin("rules", "workers") == "PULSECHECK_RULES__WORKERS"
    assert (hit.origins, hit.secrets, hit.user, hit.now_override) == (
        fresh.origins, fresh.secrets, fresh.user, fresh.now_override,
    )  # fmt: skip
    assert hit.secrets == {name: f"secret of {name}" for name in secret_names(SAMPLE)}
    assert (hit.tz, hit.now(), hit.log_channel_note()) == (fresh.tz, fresh.now(), fresh.log_channel_note())
    for path in [("notifications", "roles"), ("signing",), ("signing", "key"), ("limits",), ("web", "base_url")]:
        assert hit.is_default(*path) == fresh.is_default(*path), path
        assert hit.where(*path) == fresh.where(*path), path


def test_a_remembered_load_reads_the_secrets_of_this_run(tmp_path: Path, validations: Validations) -> None:
    """The secret variables' names are remembered with the values; their values are read each time (a rotated
    password needs no new validation)."""
    project = tmp_path / "pulsecheck.toml"
    project.write_text('[notifications.email]\npassword_env = "SMTP_SECRET"\n'
                       '[notifications.webhook]\ntoken_env = "PULSECHECK_HOOK_TOKEN"\n', encoding="utf-8")
    files, remembered = SettingsFiles(project=project), tmp_path / "remembered"

    def both(env: dict[str, str]) -> tuple[Settings, Settings]:
        return load_settings(files=files, env=env, remembered=remembered), load_settings(files=files, env=env)

    hit, fresh = both({"SMTP_SECRET": "one", "PULSECHECK_HOOK_TOKEN": "tok"})  # validated and remembered
    hit, fresh = both({"SMTP_SECRET": "one", "PULSECHECK_HOOK_TOKEN": "tok"})
    assert hit.secrets == fresh.secrets == {"SMTP_SECRET": "one", "PULSECHECK_HOOK_TOKEN": "tok"}
    hit, fresh = both({"SMTP_SECRET": "two"})
    assert hit.secrets == fresh.secrets == {"SMTP_SECRET": "two"}
    assert validations.count(None) == 4  # the three fresh loads and the first: the other two were remembered
    assert "one" not in repr(hit.origins) and "two" not in repr(hit.notifications)


def test_the_same_values_from_another_layer_keep_that_layer_s_origins(tmp_path: Path, validations: Validations) -> None:
    load_settings(files=SettingsFiles(project=SAMPLE), env={}, remembered=tmp_path)
    hit = load_settings(config=str(SAMPLE), files=SettingsFiles(), env={}, remembered=tmp_path)
    fresh = load_settings(config=str(SAMPLE), files=SettingsFiles(), env={})
    assert validations.count(None) == 2  # the first load and the fresh one
    assert hit.origins == fresh.origins and hit.origin("scheduler", "max_reminders") == str(SAMPLE)


@pytest.mark.parametrize("text", [
    '[priority]\nrenewal_within_days = 30\narr_at_least = 250000\nbase = {high = "P1"}\n',  # some keys, one severity
    '[priority]\nopen_issues_at_least = 1\np1_share = 0.5\n',
    "",  # no [priority]: the defaults
])
def test_the_priority_matrix_of_remembered_values_is_the_typed_section_s(tmp_path: Path, validations: Validations,
                                                                         text: str) -> None:
    """`report portfolio` takes the `[priority]` matrix without typing the section when the values were validated
    before (pydantic is a fifth of its start-up): the same matrix as the typed section gives."""
    project = tmp_path / "pulsecheck.toml"
    project.write_text(text, encoding="utf-8")
    files = SettingsFiles(project=project)
    fresh = load_settings(files=files, env={})
    typed = fresh.priority  # the section's validated values, from pydantic
    expected = (dict(typed.base), typed.renewal_within_days, typed.arr_at_least, typed.open_issues_at_least)
    load_settings(files=files, env={}, remembered=tmp_path / "remembered")
    hit = load_settings(files=files, env={}, remembered=tmp_path / "remembered")
    del validations[:]
    for settings in (hit, fresh):
        matrix = settings.priority_matrix()
        assert (dict(matrix.base), matrix.renewal_within_days, matrix.arr_at_least,
                matrix.open_issues_at_least) == expected
    assert validations == []  # no section typed for the matrix
    if text:  # what the file says, over the defaults
        written = tomllib.loads(text)["priority"]
        assert all(getattr(hit.priority_matrix(), key) == value for key, value in written.items()
                   if key not in ("base", "p1_share"))
        assert hit.priority_matrix().base["high"] == written.get("base", {}).get("high", "P2")


@pytest.mark.parametrize("text", [
    '[limits]\nyaml_max_size = "64KB"\nyaml_max_depth = 8\n',  # a size as text, one bound left to its default
    "[limits]\nyaml_max_size = 2048\nyaml_max_values = 99\n",
    "",  # no [limits]: the defaults
])
def test_the_yaml_limits_of_remembered_values_are_the_typed_section_s(tmp_path: Path, validations: Validations,
                                                                       text: str) -> None:
    """`model validate`, `rules validate` and `review fill` take the YAML bounds without typing `[limits]` when the
    values were validated before: the bounds the typed section gives, and what the file says."""
    project = tmp_path / "pulsecheck.toml"
    project.write_text(text, encoding="utf-8")
    files = SettingsFiles(project=project)
    fresh = load_settings(files=files, env={})
    expected = fresh.limits.yaml()
    load_settings(files=files, env={}, remembered=tmp_path / "remembered")
    hit = load_settings(files=files, env={}, remembered=tmp_path / "remembered")
    del validations[:]
    assert hit.yaml_limits() == expected and fresh.yaml_limits() == expected
    assert validations == []  # no section typed for the bounds
    written = tomllib.loads(text).get("limits", {})
    size = written.get("yaml_max_size", 5 * 1024 * 1024)
    assert hit.yaml_limits().max_bytes == (int(size[:-2]) * 1024 if isinstance(size, str) else size)
    assert hit.yaml_limits().max_depth == written.get("yaml_max_depth", 64)
    assert hit.yaml_limits().max_nodes == written.get("yaml_max_values", 1_000_000)


def forged(directory: Path, text: str) -> Path:
    """Where the record of the values of a project file holding `text` (and nothing else) is kept."""
    return directory / f"{checked.digest(tomllib.loads(text))}.json"


BAD_RECORDS = {
    "not JSON": b"secrets: []",
    "empty": b"",
    "cut short": b'{"secrets": [',
    "not UTF-8": b'{"secrets": ["\xff"]}',
    "a list": b"[]",
    "null": b"null",
    "no secrets": b"{}",
    "secrets not a list": b'{"secrets": "SMTP_SECRET"}',
    "a secret not text": b'{"secrets": [1]}',
    "nested too deep": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("content", BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_a_record_that_cannot_be_read_is_no_record(tmp_path: Path, content: bytes) -> None:
    """An invalid file behind a record that is not one that `remember` writes is refused, as without one."""
    project = tmp_path / "pulsecheck.toml"
    project.write_text(INVALID, encoding="utf-8")
    files, remembered = SettingsFiles(project=project), tmp_path / "remembered"
    record = forged(remembered, INVALID)
    checked.remember(remembered, record.stem, [])  # the record a valid file with these values would leave
    settings = load_settings(files=files, env={}, remembered=remembered)  # so the forged name is right:
    with pytest.raises(InputError, match=f"^{re.escape(f'{project}: {INVALID_LINE}')}$"):
        _ = settings.scheduler  # the section is typed (and refused) only when read
    record.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_settings(files=files, env={}, remembered=remembered)
    assert str(caught.value) == f"{project}: {INVALID_LINE}"


def test_a_record_that_cannot_be_read_is_replaced_by_one_that_can(tmp_path: Path, validations: Validations) -> None:
    files = SettingsFiles(project=SAMPLE)
    load_settings(files=files, env={}, remembered=tmp_path)
    (record,) = tmp_path.glob("*.json")
    record.write_bytes(b"\x00" * 16)  # a record written over, say, by a crash
    settings = load_settings(files=files, env={}, remembered=tmp_path)
    assert settings.scheduler == load_settings(files=files, env={}).scheduler
    load_settings(files=files, env={}, remembered=tmp_path)
    assert validations.count(None) == 3  # the first load, the one after the damage, and the fresh one
    assert [path.name for path in tmp_path.glob("*.json")] == [record.name]


def unwritable(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A records directory `remember` cannot write a record of key `key` into, and that key."""
    key = "ab" * 32
    blocker = tmp_path / "file"
    blocker.write_text("a file\n", encoding="utf-8")
    if kind == "a regular file":
        return blocker, key
    if kind == "below a regular file":
        return blocker / "settings", key
    directory = tmp_path / "records"
    if kind == "the record's name taken by a directory":
        (directory / f"{key}.json").mkdir(parents=True)
        return directory, key
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only directory")
    directory.mkdir(mode=0o500)
    return directory, key


@pytest.mark.parametrize("kind", ["a regular file", "below a regular file", "the record's name taken by a directory",
                                  "read-only"])
def test_remember_into_a_directory_that_cannot_be_written_does_not_raise(tmp_path: Path, kind: str) -> None:
    directory, key = unwritable(tmp_path, kind)
    before = sorted(str(path) for path in tmp_path.rglob("*"))
    checked.remember(directory, key, ["SMTP_SECRET"])
    assert checked.recall(directory, key) is None
    assert sorted(str(path) for path in tmp_path.rglob("*")) == before  # no temporary file left behind
    settings = load_settings(files=SettingsFiles(project=SAMPLE), env={}, remembered=directory)
    assert settings.scheduler == load_settings(files=SettingsFiles(project=SAMPLE), env={}).scheduler


def test_only_the_newest_keep_records_stay(tmp_path: Path) -> None:
    """Each record is given a modification time after the one before (a second apart, in the past), so that
    which are the newest does not hang on the file system's clock resolution."""
    keys = [f"{n:064x}" for n in range(checked.KEEP + 5)]
    start = time.time_ns() - 3600 * 10**9
    for n, key in enumerate(keys):
        checked.remember(tmp_path, key, [f"VAR_{n}"])
        assert checked.recall(tmp_path, key) == [f"VAR_{n}"]
        stamp = start + n * 10**9
        os.utime(tmp_path / f"{key}.json", ns=(stamp, stamp))
    assert sorted(path.stem for path in tmp_path.glob("*.json")) == keys[-checked.KEEP:]
    assert [checked.recall(tmp_path, key) for key in keys[:5]] == [None] * 5
    assert [path.name for path in tmp_path.iterdir() if not path.name.endswith(".json")] == []  # no temporary


# --- the digest ---------------------------------------------------------------------------------------------------


def sample_values() -> dict[str, Any]:
    return tomllib.loads(SAMPLE.read_text(encoding="utf-8"))


def reordered(value: Any) -> Any:
    """`value` with the keys of every table in reverse order."""
    if isinstance(value, dict):
        return {key: reordered(value[key]) for key in reversed(value)}
    if isinstance(value, list):
        return [reordered(item) for item in value]
    return value


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value that is not a table, list items included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        yield path
        for n, item in enumerate(value):
            yield from leaves(item, (*path, n))
    else:
        yield path


def replaced(values: dict[str, Any], path: tuple[Any, ...], new: Any) -> dict[str, Any]:
    changed = copy.deepcopy(values)
    target = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new
    return changed


def test_the_digest_does_not_depend_on_the_order_of_keys() -> None:
    values = sample_values()
    assert list(reordered(values)) != list(values)  # the order did change
    assert checked.digest(reordered(values)) == checked.digest(values)
    assert checked.digest({"a": 1, "b": {"x": 1, "y": [{"p": 1, "q": 2}]}}) == checked.digest(
        {"b": {"y": [{"q": 2, "p": 1}], "x": 1}, "a": 1}
    )


def test_the_digest_changes_with_any_value_key_or_table() -> None:
    values = sample_values()
    paths = list(leaves(values))
    assert len(paths) > 60  # every key of the sample, every list item
    variants = [replaced(values, path, "changed") for path in paths]
    variants += [replaced(values, path, 7) for path in paths]
    variants.append(replaced(values, ("scheduler", "max_reminders"), 4))  # a number by one
    variants.append(replaced(values, ("notifications", "roles", "head_of_cs"), ["diana", "diana"]))
    variants.append(replaced(values, ("notifications", "roles", "head_of_cs"), []))
    renamed = copy.deepcopy(values)
    renamed["scheduler"]["max_reminderz"] = renamed["scheduler"].pop("max_reminders")
    moved = copy.deepcopy(values)
    moved["review"]["max_reminders"] = moved["scheduler"].pop("max_reminders")
    added = replaced(values, ("segments", "smb", "owner"), "carol")
    removed = copy.deepcopy(values)
    del removed["limits"]  # an empty table is a value too
    variants += [renamed, moved, added, removed]
    digests = [checked.digest(values), *(checked.digest(variant) for variant in variants)]
    assert len(set(digests)) == len(digests)


KINDS = {
    "1 and '1'": (1, "1"), "true and 1": (True, 1), "false and 0": (False, 0), "true and 'true'": (True, "true"),
    "1 and 1.0": (1, 1.0), "0.0 and -0.0": (0.0, -0.0), "empty list and empty table": ([], {}),
    "list of an empty table and of an empty list": ([{}], [[]]), "['a'] and 'a'": (["a"], "a"),
    "list of pairs and table": ([["a", 1]], {"a": 1}), "date and its text": (date(2026, 11, 24), "2026-11-24"),
}


@pytest.mark.parametrize(("one", "other"), KINDS.values(), ids=KINDS.keys())
def test_the_digest_tells_the_types_of_values_apart(one: Any, other: Any) -> None:
    assert checked.digest({"scheduler": {"max_reminders": one}}) != checked.digest(
        {"scheduler": {"max_reminders": other}}
    )


def test_the_digest_is_the_same_in_another_process() -> None:
    """A record is found by the next command: the digest does not vary with the interpreter's hash seed."""
    script = (
        "import sys, tomllib; from pulsecheck.config import checked; "
        "print(checked.digest(tomllib.loads(open(sys.argv[1], encoding='utf-8').read())))"
    )
    for seed in ("1", "2"):
        done = subprocess.run([sys.executable, "-c", script, str(SAMPLE)], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == checked.digest(sample_values())


def test_an_empty_table_where_an_empty_list_was_is_validated(tmp_path: Path) -> None:
    """`trusted_proxies = []` passes and is remembered; `trusted_proxies = {}` is refused without a record, and
    must be with one."""
    project = tmp_path / "pulsecheck.toml"
    files, remembered = SettingsFiles(project=project), tmp_path / "remembered"
    project.write_text("[web]\ntrusted_proxies = []\n", encoding="utf-8")
    load_settings(files=files, env={}, remembered=remembered)
    project.write_text("[web]\ntrusted_proxies = {}\n", encoding="utf-8")
    problem = f"{project}: [web] trusted_proxies: expected a list of names, got {{}}"
    with pytest.raises(InputError, match=f"^{re.escape(problem)}$"):
        load_settings(files=files, env={})
    with pytest.raises(InputError, match=f"^{re.escape(problem)}$"):
        load_settings(files=files, env={}, remembered=remembered)


# --- a blank [signing] key ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "  ", "\t"])
def test_a_blank_signing_key_is_refused_every_time_and_never_remembered(tmp_path: Path, key: str) -> None:
    project = tmp_path / "pulsecheck.toml"
    project.write_text(f'[signing]\nkey = "{key}"\n', encoding="utf-8")
    remembered = tmp_path / "remembered"
    for _ in range(2):
        with pytest.raises(InputError) as caught:
            load_settings(files=SettingsFiles(project=project), env={}, remembered=remembered)
        assert str(caught.value) == f"{project}: [signing] key: must not be empty"
    assert not remembered.exists() or list(remembered.iterdir()) == []


def test_a_signing_key_that_is_not_blank_is_kept_as_written(tmp_path: Path) -> None:
    project = tmp_path / "pulsecheck.toml"
    project.write_text('[signing]\nkey = " ~/keys/id_ed25519.pub"\n', encoding="utf-8")
    files = SettingsFiles(project=project)
    load_settings(files=files, env={}, remembered=tmp_path)
    assert load_settings(files=files, env={}, remembered=tmp_path).signing.key == " ~/keys/id_ed25519.pub"
