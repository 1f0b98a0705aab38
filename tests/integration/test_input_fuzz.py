"""Property-based fuzzing of every loader and importer: random bytes, random text and random well-formed files
either load or fail with InputError (exit 2 at the CLI), never another exception; what loads is kept as given."""

from __future__ import annotations

import csv
import io
import json
import string
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from pulsecheck.errors import InputError
from pulsecheck.rules.language import load_rules, load_rules_file
from pulsecheck.scoring.schema import load_model_file, parse_model
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Account
from pulsecheck.workflow.accounts import import_accounts
from pulsecheck.workflow.imports import FileFormat
from pulsecheck.workflow.inputs import import_issues, import_readings, import_surveys
from pulsecheck.workflow.review_form import parse_form
from pulsecheck.workflow.users import add_user, import_users
from pulsecheck.yamlfile import load_file, load_text

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NASTY = [
    "",
    " ",
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "1e999",
    "1,5",
    "1.5",
    "-0",
    "1_000",
    "١٢",
    "9" * 400,
    "\x00",
    "2026-11-20",
    "2026-11-20T06:00:00Z",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00",
    "99999-01-01",
    "ACME",
    "GLOBEX",
    "usage",
    "csat",
    "nps",
    "ticket",
    "closed",
    "reviewer",
    "bob",
    "a\u2028b",
    "x\r\ny",
    '"',
    "'",
]
YAML_ALPHABET = string.ascii_letters[:6] + string.digits + " :-[]{}&*!|>'\"#,.\n\t~?%@`" + "é\u2028"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}")
    upgrade(database.engine)
    with database.transaction() as session:
        add_user(session, "maria", ["manager"], NOW)
        add_user(session, "bob", ["reviewer"], NOW, manager="maria")
        session.add_all([Account(external_id="ACME", name="Acme"), Account(external_id="GLOBEX", name="Globex")])
    yield database
    database.dispose()


def importers(database: Database) -> dict[str, Callable[[Path], Any]]:
    """Each importer, run in a transaction that is rolled back (the fuzz cases never accumulate)."""

    def rolled_back(work: Callable[[Any, Path], Any]) -> Callable[[Path], Any]:
        def run(path: Path) -> Any:
            session = database.session()
            try:
                with session.begin():
                    result = work(session, path)
                    session.rollback()
                    return result
            finally:
                session.close()

        return run

    return {
        "accounts": rolled_back(lambda s, p: import_accounts(s, p)),
        "readings": rolled_back(lambda s, p: import_readings(s, p, UTC, NOW)),
        "surveys": rolled_back(lambda s, p: import_surveys(s, p, UTC, NOW)),
        "issues": rolled_back(lambda s, p: import_issues(s, p, UTC)),
        "users": rolled_back(lambda s, p: import_users(s, p, NOW)),
    }


COLUMNS = {
    "accounts": ["external_id", "name", "arr", "owner", "renewal_date"],
    "readings": ["account", "kpi", "value", "observed_at", "source"],
    "surveys": ["account", "kind", "score", "max_score", "responded_at"],
    "issues": ["external_id", "account", "kind", "status", "opened_at", "closed_at"],
    "users": ["name", "roles", "email", "manager"],
}
YAML_LOADERS: dict[str, Callable[[Path], Any]] = {
    "yaml": load_file,
    "model": load_model_file,
    "rules": load_rules_file,
    "review": lambda path: parse_form(load_file(path), str(path)),
}


def loads_or_refuses(load: Callable[[Path], Any], path: Path) -> None:
    try:
        load(path)
    except InputError:
        pass  # the one acceptable failure: the CLI prints it as one line and exits 2


cells = st.sampled_from(NASTY) | st.text(max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(data=st.binary(max_size=3000), suffix=st.sampled_from([".csv", ".json"]))
def test_random_bytes_into_every_importer(database: Database, tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"in{suffix}"
    path.write_bytes(data)
    for load in importers(database).values():
        loads_or_refuses(load, path)


@FUZZ
@given(
    noun=st.sampled_from(sorted(COLUMNS)),
    rows=st.lists(st.lists(cells, min_size=3, max_size=7), max_size=6),
    delimiter=st.sampled_from([",", ",", ";", "\t"]),
    crlf=st.booleans(),
)
def test_random_csv_rows_into_every_importer(
    database: Database, tmp_path: Path, noun: str, rows: list[list[str]], delimiter: str, crlf: bool
) -> None:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(COLUMNS[noun])
    writer.writerows(rows)
    path = tmp_path / "in.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    loads_or_refuses(importers(database)[noun], path)


@FUZZ
@given(
    noun=st.sampled_from(sorted(COLUMNS)),
    records=st.lists(
        st.dictionaries(st.sampled_from(["x", *sum(COLUMNS.values(), [])]), cells | json_values), max_size=5
    ),
    wrapped=st.booleans(),
)
def test_random_json_records_into_every_importer(
    database: Database, tmp_path: Path, noun: str, records: list[dict[str, Any]], wrapped: bool
) -> None:
    path = tmp_path / "in.json"
    path.write_text(json.dumps({noun: records} if wrapped else records), encoding="utf-8")
    loads_or_refuses(importers(database)[noun], path)


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_into_every_yaml_loader(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "in.yaml"
    path.write_bytes(data)
    for load in YAML_LOADERS.values():
        loads_or_refuses(load, path)


@FUZZ
@given(text=st.text(alphabet=YAML_ALPHABET, max_size=300))
def test_random_yaml_text_into_every_yaml_loader(text: str) -> None:
    for load in (
        lambda t: load_text(t, "in.yaml"),
        lambda t: parse_model(t, "in.yaml"),
        lambda t: load_rules(t, "in.yaml"),
        lambda t: parse_form(load_text(t, "in.yaml"), "in.yaml"),
    ):
        try:
            load(text)
        except InputError:
            pass


yaml_data = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(data=yaml_data)
def test_yaml_that_is_within_bounds_loads_as_written(data: Any) -> None:
    assert load_text(yaml.safe_dump(data), "in.yaml") == data  # escaped: YAML 1.1 folds a raw U+0085


@FUZZ
@given(
    names=st.lists(
        st.text(min_size=1, max_size=20).filter(lambda t: t.strip() and "\x00" not in t),
        min_size=1,
        max_size=5,
        unique_by=str.strip,
    )
)
def test_account_names_are_stored_as_given(database: Database, tmp_path: Path, names: list[str]) -> None:
    """Quoted line breaks, U+2028, quotes and delimiters inside a name survive a CSV import unchanged (apart from
    the surrounding spaces every text cell drops)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # as spreadsheets write: a CR or LF in a value is quoted
    writer.writerow(["external_id", "name"])
    writer.writerows([f"N-{index}", name] for index, name in enumerate(names))
    path = tmp_path / "names.csv"
    path.write_bytes(out.getvalue().encode())
    session = database.session()
    try:
        with session.begin():
            import_accounts(session, path, FileFormat())
            stored = dict(
                session.execute(select(Account.external_id, Account.name).where(Account.external_id.like("N-%"))).all()
            )
            session.rollback()
    finally:
        session.close()
    assert stored == {f"N-{index}": name.strip() for index, name in enumerate(names)}
