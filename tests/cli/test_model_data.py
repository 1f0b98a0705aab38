"""The approved model's data stored beside its text (migration 0024, issue 17): a read takes the model from it
without the YAML parser, and only when it is the approved content; damaged or stale data falls back to the text.
Expected buckets are read from the model file with PyYAML here, not through pulsecheck."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from alembic import command
from sqlalchemy import inspect, select, text, update

from pulsecheck.demo import examples_dir
from pulsecheck.scoring.model import ScoringModel
from pulsecheck.scoring.schema import parse_model
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import alembic_config, upgrade
from pulsecheck.storage.tables import SCORING_MODELS
from tests.cli.test_cold_start_imports import imported, loaded
from tests.conftest import NOW, Factory, as_json, installed, ok

MODEL = examples_dir() / "scoring.yaml"


def file_buckets(path: Path) -> dict[str, int]:
    """The buckets the file names, each with no accounts (nothing is scored here)."""
    return text_buckets(path.read_text(encoding="utf-8"))


def text_buckets(text: str) -> dict[str, int]:
    return {bucket["name"]: 0 for bucket in yaml.safe_load(text)["buckets"]}


def cli_env(db_url: str) -> dict[str, str]:
    return {"PULSECHECK_DATABASE_URL": db_url, "PULSECHECK_NOW": NOW.isoformat()}


@pytest.fixture
def approved(db_url: str, factory: Factory, os_login_admin: str, tmp_path: Path) -> Path:
    """The example model approved through the CLI, in a directory whose settings file sets `[priority]` (typed by
    pydantic when validated); the directory."""
    factory.team()
    (tmp_path / "pulsecheck.toml").write_text('[priority]\narr_at_least = 50000\nbase = {high = "P1"}\n')
    ok(installed("--as", "olga", "model", "approve", str(MODEL), cwd=tmp_path, env=cli_env(db_url)))
    return tmp_path


def test_approval_stores_the_model_s_data(database: Database, approved: Path) -> None:
    with database.engine.connect() as conn:
        row = conn.execute(select(SCORING_MODELS)).one()
    stored, content = json.loads(row.model_data), MODEL.read_text(encoding="utf-8")
    assert ScoringModel.from_data(stored["model"]) == parse_model(content, "x")
    assert stored["text"] == hashlib.sha256(content.encode("utf-8")).hexdigest() and row.content == content


def test_the_report_reads_the_model_without_yaml_or_the_settings_models(db_url: str, approved: Path) -> None:
    report = ("report", "portfolio", "--json")
    assert as_json(installed(*report, cwd=approved, env=cli_env(db_url)))["buckets"] == file_buckets(MODEL)
    modules = imported(db_url, *report, cwd=approved, PULSECHECK_NOW=NOW.isoformat())  # the settings remembered
    assert "pulsecheck.workflow.portfolio" in modules  # the log is read (the command did its work)
    assert [name for name in ("yaml", "pulsecheck.yamlfile", "pulsecheck.scoring.schema", "pydantic",
                              "pulsecheck.config.sections") if loaded(modules, name)] == []


def damage(database: Database, how: str) -> None:
    with database.engine.begin() as conn:
        stored, content = conn.execute(select(SCORING_MODELS.c.model_data, SCORING_MODELS.c.content)).one()
        data: Any = json.loads(stored)
        if how == "the text changed":  # the data as approved, but the text (the record) says otherwise now
            conn.execute(update(SCORING_MODELS).values(content=content.replace("{name: unhealthy,", "{name: sick,")))
            return
        if how == "a bucket renamed":  # valid data, but not the approved content: its digest differs
            data["model"]["buckets"][0][0] = "renamed"
            changed = json.dumps(data)
        elif how == "not JSON":
            changed = stored[: len(stored) // 2]
        elif how == "a field missing":
            del data["model"]["kpis"][0]["weight"]
            changed = json.dumps(data)
        else:
            changed = json.dumps([1, 2])
        conn.execute(update(SCORING_MODELS).values(model_data=changed))


@pytest.mark.parametrize("how", ["a bucket renamed", "not JSON", "a field missing", "a list", "the text changed"])
def test_data_that_is_not_the_approved_content_is_not_used(database: Database, db_url: str, approved: Path,
                                                            how: str) -> None:
    damage(database, how)
    with database.engine.connect() as conn:
        expected = text_buckets(conn.scalar(select(SCORING_MODELS.c.content)))
    assert ("sick" in expected) == (how == "the text changed")
    report = ("report", "portfolio", "--json")
    assert as_json(installed(*report, cwd=approved, env=cli_env(db_url)))["buckets"] == expected
    modules = imported(db_url, *report, cwd=approved, PULSECHECK_NOW=NOW.isoformat())
    assert loaded(modules, "pulsecheck.scoring.schema")  # the text parsed instead
    shown = as_json(installed("model", "show", "--json", cwd=approved, env=cli_env(db_url)))
    assert [bucket["name"] for bucket in shown["model"]["buckets"]] == list(expected)


def fill_up_to_0023(database: Database) -> None:
    """A database at revision 0023 holding the example model (retired), a version whose text no longer parses,
    and the example model's twin approved."""
    upgrade(database.engine, "0023")
    content = MODEL.read_text(encoding="utf-8")
    with database.engine.begin() as conn:
        for version, body, status in (("1", content, "retired"), ("2", "version: 2\nkpis: []\n", "retired"),
                                      ("3", content.replace("2026.11", "3"), "approved")):
            digest = parse_model(body, "x").digest() if version != "2" else "0" * 64
            conn.execute(text("INSERT INTO scoring_models (version, content, sha256, status) VALUES (:v, :c, :s, :t)"),
                         {"v": version, "c": body, "s": digest, "t": status})


def check_migration(database: Database) -> None:
    fill_up_to_0023(database)
    for _ in range(2):  # up, down and up again
        upgrade(database.engine)
        with database.engine.connect() as conn:
            rows = {row.version: row for row in conn.execute(select(SCORING_MODELS))}
        for version in ("1", "3"):
            expected = parse_model(rows[version].content, "x")
            stored = json.loads(rows[version].model_data)
            assert ScoringModel.from_data(stored["model"]) == expected
            # the digest a read checks the data against: of the row's text, as the approval writes it
            assert stored["text"] == hashlib.sha256(rows[version].content.encode("utf-8")).hexdigest()
        assert rows["2"].model_data is None  # the text does not parse: read as before
        command.downgrade(alembic_config(database.engine), "0023")
        columns = {column["name"] for column in inspect(database.engine).get_columns("scoring_models")}
        assert "model_data" not in columns and len(rows) == 3


def test_the_upgrade_fills_the_data_of_the_stored_versions(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        check_migration(database)
    finally:
        database.dispose()


@pytest.mark.postgres
def test_the_upgrade_on_postgresql(pg_url: str) -> None:
    database = Database(pg_url)
    try:
        check_migration(database)
    finally:
        database.dispose()


@pytest.mark.parametrize("limit", [1000, 2000])
def test_model_validate_honours_remembered_yaml_limits_without_pydantic(db_url: str, tmp_path: Path,
                                                                       limit: int) -> None:
    """`[limits] yaml_max_size` as text ("1000B"): the first run validates the settings file, the second takes the
    remembered values without typing the section, and both refuse or accept the model file by its size alike."""
    (tmp_path / "pulsecheck.toml").write_text(f'[limits]\nyaml_max_size = "{limit}B"\n')
    size = MODEL.stat().st_size
    args = ("model", "validate", str(MODEL))
    runs = [installed(*args, cwd=tmp_path, env=cli_env(db_url)) for _ in range(2)]
    for done in runs:
        if size > limit:
            assert (done.returncode, done.stderr) == (
                2, f"error: {MODEL}: {size:,} bytes is over the limit of {limit:,} bytes\n")
        else:
            assert done.returncode == 0 and done.stdout.startswith(f"{MODEL}: ok (version ")
    if size <= limit:
        modules = imported(db_url, *args, cwd=tmp_path, PULSECHECK_NOW=NOW.isoformat())
        assert "pulsecheck.scoring.schema" in modules  # the file was validated
        assert [name for name in ("pydantic", "pulsecheck.config.sections") if loaded(modules, name)] == []
