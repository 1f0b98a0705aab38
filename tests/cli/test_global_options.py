"""--db, --config and --as work after the subcommand too, in both `--opt X` and `--opt=X` forms; `--` stops them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pulsecheck.app import os_login
from tests.conftest import Factory


def ok(result: Any) -> str:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr == ""
    return str(result.stdout)


def review_ids(result: Any) -> list[int]:
    return [r["id"] for r in json.loads(ok(result))["items"]]


def test_as_after_the_subcommand_is_who_acts(run: Any, factory: Factory) -> None:
    factory.team()
    assert ok(run("review", "new", "ACME", "--as", "bob")).startswith("review 1 opened for ACME (reviewer bob,")
    assert review_ids(run("review", "list", "--mine", "--as", "bob", "--json")) == [1]
    assert review_ids(run("review", "list", "--mine", "--json", "--as=olga")) == []  # olga is neither party
    # the last one on the line wins, as for any click option
    assert review_ids(run("--as", "bob", "review", "list", "--mine", "--as", "olga", "--json")) == []


def test_db_after_the_subcommand_picks_the_database(run: Any, factory: Factory, tmp_path: Path) -> None:
    factory.team()  # in the default (environment) database; the other one starts empty
    other = f"sqlite:///{tmp_path / 'other.db'}"
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("external_id,name,owner\nINITECH,Initech,bob\n", encoding="utf-8")
    assert ok(run("init", "--db", other)).startswith("database ready")  # the current login: its first admin
    ok(run("users", "add", "bob", "--role", "reviewer", "--db", other))
    ok(run("users", "add", "maria", "--role", "manager", f"--db={other}"))
    ok(run("accounts", "import", str(accounts), "--db", other))
    assert ok(run("review", "new", "INITECH", "--approver", "maria", "--db", other, "--as", "bob")).startswith(
        "review 1 opened for INITECH"
    )

    shown = json.loads(ok(run("review", "show", "1", "--db", other, "--json")))
    assert (shown["account"], shown["state"], shown["reviewer"]) == ("INITECH", "draft", "bob")
    listed = [u["name"] for u in json.loads(ok(run("users", "list", "--json", "--db", other)))["items"]]
    assert sorted(listed) == sorted(["bob", "maria", os_login()])
    missing = run("review", "show", "1", "--json")  # the default database has no review
    assert missing.exit_code == 2 and missing.stdout == ""
    assert missing.stderr.startswith("error: ") and "review 1" in missing.stderr


def test_config_after_the_subcommand_is_read(run: Any, factory: Factory, tmp_path: Path) -> None:
    factory.team()
    config = tmp_path / "short.toml"
    config.write_text('[review]\ndue_in = "3d"\n', encoding="utf-8")
    said = ok(run("review", "new", "ACME", "--as", "bob", "--config", str(config)))
    assert said.rstrip().endswith("due 2026-11-27)"), said  # NOW is 2026-11-24; the default would be 14 days


def test_nothing_after_double_dash_moves(run: Any, factory: Factory) -> None:
    factory.team()
    factory.review()
    ok(run("review", "set", "1", "employee_comments", "--as", "bob", "--", "--db"))
    assert json.loads(ok(run("review", "show", "1", "--json")))["employee_comments"] == "--db"


def test_a_global_option_without_its_value_is_a_usage_error(run: Any) -> None:
    result = run("review", "list", "--as")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == ["error: Option '--as' requires an argument."]
