"""Imports and YAML files as users give them, from the command line: a BOM and CRLF line ends are accepted;
values are stored exactly as given (line breaks inside quoted fields, U+2028, a declared delimiter and decimal
comma); every bad row is listed on stderr, then one `error:` line."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import select

from pulsecheck.demo import examples_dir
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import KpiReading

Run = Callable[..., Result]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def team(run: Run) -> Run:
    ok(run("users", "import", str(examples_dir() / "users.csv")))
    return run


def windows(path: Path, source: Path) -> Path:
    """`source` saved as a Windows spreadsheet does: a UTF-8 BOM and CRLF line ends."""
    path.write_bytes(codecs.BOM_UTF8 + source.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return path


def test_a_bom_and_crlf_are_accepted_by_every_importer(team: Run, tmp_path: Path) -> None:
    for noun, file, said in (
        ("users", examples_dir() / "users.csv", "0 created, 8 updated"),
        ("accounts", EXAMPLES / "accounts.csv", "12 created, 0 updated"),
        ("readings", EXAMPLES / "readings.csv", "606 readings created, 0 updated"),  # 450 + 12 x 13 logins
        ("surveys", EXAMPLES / "surveys.csv", "144 surveys created, 0 updated"),
        ("issues", EXAMPLES / "issues.csv", "10 issues created, 0 updated"),
    ):
        path = windows(tmp_path / file.name, file)
        assert ok(team(noun, "import", str(path))).stdout == f"{path}: {said}\n"
    accounts = json.loads(ok(team("accounts", "list", "--json")).stdout)["items"]
    assert accounts[0]["id"] == "ACME"  # the BOM is not part of the first column's name


def test_a_bom_and_crlf_are_accepted_by_every_yaml_loader(team: Run, tmp_path: Path) -> None:
    model = windows(tmp_path / "scoring.yaml", EXAMPLES / "scoring.yaml")
    assert ok(team("model", "validate", str(model))).stdout.startswith(f"{model}: ok")
    rules = windows(tmp_path / "rules.yaml", EXAMPLES / "rules.yaml")
    assert ok(team("rules", "validate", str(rules))).stdout.startswith(f"{rules}: ")
    ok(team("accounts", "import", str(EXAMPLES / "accounts.csv")))
    ok(team("--as", "bob", "review", "new", "ACME"))
    form = windows(tmp_path / "review.yaml", EXAMPLES / "review.yaml")
    assert ok(team("--as", "bob", "review", "fill", "1", str(form))).stdout == f"review 1: filled from {form}\n"
    shown = json.loads(ok(team("review", "show", "1", "--json")).stdout)
    assert shown["account_goals"].startswith("Expand from 320 to 500 seats")
    assert "\r" not in shown["account_goals"]  # YAML reads CRLF as a line break


def test_values_are_stored_as_given(team: Run, tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes('external_id,name,arr\r\nA1,"Line1\r\nLine2",1.5\r\nA2,"x\u2028y, ""quoted""",2e3\r\n'.encode())
    assert ok(team("accounts", "import", str(path))).stdout == f"{path}: 2 created, 0 updated\n"
    listed = json.loads(ok(team("accounts", "list", "--json")).stdout)["items"]
    stored = {a["id"]: (a["name"], a["arr"]) for a in listed}
    assert stored == {"A1": ("Line1\r\nLine2", 1.5), "A2": ('x\u2028y, "quoted"', 2000.0)}


def test_a_semicolon_file_with_decimal_commas_needs_saying_so(team: Run, tmp_path: Path, database: Database) -> None:
    ok(team("accounts", "import", str(EXAMPLES / "accounts.csv")))
    path = tmp_path / "readings.csv"
    path.write_text("account;kpi;value;observed_at\nACME;usage;1,5;2026-11-20\n")
    refused = team("readings", "import", str(path))
    assert (refused.exit_code, refused.stderr) == (
        2,
        f"error: {path}: delimiter looks like ';' (use --delimiter ';')\n",
    )
    refused = team("readings", "import", str(path), "--delimiter", ";")
    assert refused.stderr == (
        f"error: {path}: row 2, column 'value': '1,5' is not a number (use a decimal point, or --decimal-comma)\n"
    )
    said = ok(team("readings", "import", str(path), "--delimiter", ";", "--decimal-comma")).stdout
    assert said == f"{path}: 1 readings created, 0 updated\n"
    with database.transaction() as session:
        assert session.scalars(select(KpiReading.value)).all() == [1.5]


def test_tab_separated_and_wrapped_json_files(team: Run, tmp_path: Path) -> None:
    ok(team("accounts", "import", str(EXAMPLES / "accounts.csv")))
    tabs = tmp_path / "readings.tsv"
    tabs.write_text("account\tkpi\tvalue\tobserved_at\nACME\tusage\t50\t2026-11-20\n")
    said = ok(team("readings", "import", str(tabs), "--delimiter", "\\t")).stdout
    assert said == f"{tabs}: 1 readings created, 0 updated\n"
    wrapped = tmp_path / "readings.json"
    wrapped.write_text(
        json.dumps({"readings": [{"account": "ACME", "kpi": "usage", "value": 51, "observed_at": "2026-11-21"}]})
    )
    assert ok(team("readings", "import", str(wrapped))).stdout == f"{wrapped}: 1 readings created, 0 updated\n"


def test_every_bad_row_is_listed_then_one_error_line(team: Run, tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text(
        "external_id,name,arr,owner,renewal_date\n"
        "A1,Acme,1000,bob,2027-01-15\n"
        "A2,,1000,bob,2027-01-15\n"
        'A3,Beta,"1,000",bob,2027-01-15\n'
        "A4,Gamma,10,bobby,2027-01-15\n"
        "A1,Delta,10,bob,99999-01-01\n"
    )
    result = team("accounts", "import", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}: row 3, column 'name': value is required",
        f"{path}: row 4, column 'arr': '1,000' is not a number (use a decimal point, or --decimal-comma)",
        f"{path}: row 5, column 'owner': unknown user 'bobby' (did you mean 'bob'?)",
        f"{path}: row 6, column 'renewal_date': '99999-01-01' is not a date (YYYY-MM-DD)",
        f"error: {path}: 4 problem(s)",
    ]
    assert json.loads(ok(team("accounts", "list", "--json")).stdout)["items"] == []
