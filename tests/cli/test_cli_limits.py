"""`[limits]` in a settings file bounds what the commands read: a lowered limit refuses input the defaults let
through, with one `error:` line naming the file and the limit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from pulsecheck.demo import examples_dir
from tests.conftest import error

Run = Callable[..., Result]


def settings(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pulsecheck.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def seed(run: Run) -> None:
    for noun in ("users", "accounts"):
        assert run(noun, "import", str(examples_dir() / f"{noun}.csv")).exit_code == 0


def test_a_lowered_csv_field_limit_refuses_a_readings_file_the_default_takes(run: Run, tmp_path: Path) -> None:
    seed(run)
    readings = tmp_path / "r.csv"
    readings.write_text("account,kpi,value,observed_at,source\nACME,usage,50,2026-11-20T06:00:00Z,"
                        "the-crm-export-of-the-first-of-november\n", encoding="utf-8")
    strict = settings(tmp_path, "[limits]\ncsv_max_field = 16\n")
    line = error(run("--config", strict, "readings", "import", str(readings)), 2)
    assert line == f"error: {readings}: row 2: a field is longer than 16 characters"
    assert run("readings", "import", str(readings)).exit_code == 0  # the default (128 KB) takes it


def test_a_lowered_yaml_size_refuses_the_example_model(run: Run, tmp_path: Path) -> None:
    strict = settings(tmp_path, "[limits]\nyaml_max_size = 100\n")
    model = str(examples_dir() / "scoring.yaml")
    line = error(run("--config", strict, "model", "validate", model), 2)
    assert line.startswith(f"error: {model}") and "100" in line
    assert run("model", "validate", model).exit_code == 0


def test_a_lowered_yaml_depth_names_the_line_nested_too_deep(run: Run, tmp_path: Path) -> None:
    strict = settings(tmp_path, "[limits]\nyaml_max_depth = 2\n")
    model = str(examples_dir() / "scoring.yaml")
    result = run("--config", strict, "rules", "validate", str(examples_dir() / "rules.yaml"))
    assert result.exit_code == 2 and "nested deeper than 2 levels" in result.stderr
    result = run("--config", strict, "model", "validate", model)
    assert result.exit_code == 2 and f"{model}:4: nested deeper than 2 levels" in result.stderr


def test_a_lowered_problem_limit_stops_reporting_there(run: Run, tmp_path: Path) -> None:
    seed(run)
    readings = tmp_path / "r.csv"
    readings.write_text("account,kpi,value,observed_at\n" + "ACME,usage,lots,2026-11-20\n" * 5, encoding="utf-8")
    strict = settings(tmp_path, "[limits]\nimport_max_problems = 2\n")
    result = run("--config", strict, "readings", "import", str(readings))
    assert result.exit_code == 2
    assert "(stopped after 2 problems)" in result.stderr and "row 4" not in result.stderr
