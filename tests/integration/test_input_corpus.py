"""Bad input, as a careless export or an attacker gives it, to every loader and importer, through the CLI as a
user runs it: exit 2, exactly one `error:` line, every message naming the file, no traceback, and the database
unchanged byte for byte (its iterdump before and after). Then the shapes that must be accepted as given: a BOM,
CRLF line ends, line breaks inside quoted fields, U+2028, a declared delimiter and decimal comma."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pulsecheck.cli import cli
from pulsecheck.demo import examples_dir

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = "2026-11-24T09:00:00+00:00"
BOMB = "".join(
    [f"lol0: &l0 [{', '.join(['lol'] * 9)}]\n"]
    + [f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)]
)


class World:
    """One database with a team, the sample accounts and a draft review, shared by every case (each leaves it
    as it was, which is what the cases check)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "corpus.db"
        self.env = {
            "PULSECHECK_DATABASE_URL": f"sqlite:///{self.db}",
            "PULSECHECK_NOW": NOW,
            "PULSECHECK_USER": None,
            "PULSECHECK_CONFIG": None,
        }
        self.count = 0

    def run(self, *args: str) -> Result:
        return CliRunner(env=self.env).invoke(cli, list(args), catch_exceptions=False)

    def file(self, name: str, content: bytes) -> Path:
        self.count += 1
        path = self.root / f"{self.count:03d}-{name}"
        path.write_bytes(content)
        return path

    def dump(self) -> list[str]:
        with sqlite3.connect(self.db) as conn:
            return list(conn.iterdump())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    world = World(tmp_path_factory.mktemp("corpus"))
    for args in (
        ("init",),  # the OS login running the tests becomes the first admin
        ("users", "import", str(examples_dir() / "users.csv")),
        ("accounts", "import", str(EXAMPLES / "accounts.csv")),
        ("--as", "bob", "review", "new", "ACME"),
    ):
        result = world.run(*args)
        assert result.exit_code == 0, result.output
    return world


# --- the loaders and importers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Importer:
    """An import command, a good row, and which of its columns hold a number, a date or time, and a name."""

    noun: str
    good: dict[str, str]
    text: str
    number: str | None = None
    moment: str | None = None

    def args(self, path: Path) -> list[str]:
        return [self.noun, "import", str(path)]


IMPORTERS = (
    Importer(
        "accounts",
        {"external_id": "NEW-1", "name": "New Co", "arr": "1000.5", "renewal_date": "2027-01-15"},
        text="name",
        number="arr",
        moment="renewal_date",
    ),
    Importer(
        "readings",
        {"account": "ACME", "kpi": "usage", "value": "50", "observed_at": "2026-11-20T06:00:00Z"},
        text="kpi",
        number="value",
        moment="observed_at",
    ),
    Importer(
        "surveys",
        {"account": "ACME", "kind": "csat", "score": "4", "max_score": "5", "responded_at": "2026-11-20T12:00:00Z"},
        text="account",
        number="score",
        moment="responded_at",
    ),
    Importer(
        "issues",
        {"external_id": "X-1", "account": "ACME", "kind": "ticket", "opened_at": "2026-11-20", "title": "Slow"},
        text="title",
        moment="opened_at",
    ),
    Importer("users", {"name": "zed", "roles": "reviewer", "email": "zed@example.com"}, text="name"),
    Importer("cashflows", {"account": "ACME", "period": "2", "amount": "500.5"}, text="account", number="amount"),
    Importer(
        "financials",
        {"account": "ACME", "arpu": "1000", "cac": "5000", "cost_to_serve": "300", "discount_rate": "0.1"},
        text="account",
        number="arpu",
    ),
)


def csv_bytes(rows: list[dict[str, str]], delimiter: str = ",", encoding: str = "utf-8", crlf: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, list(rows[0]), delimiter=delimiter, lineterminator="\r\n" if crlf else "\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def json_text(rows: list[dict[str, Any]], raw: dict[str, str] | None = None) -> bytes:
    """A JSON list of `rows`; `raw` puts literal JSON text (NaN, a deep list...) as a value of the last row."""
    text = json.dumps(rows)
    for column, literal in (raw or {}).items():
        text = text[: text.rindex("}")] + f', "{column}": {literal}' + "}]"
    return text.encode()


@dataclass(frozen=True)
class Case:
    """One bad input: the command (given the file), the file's name and bytes, what the message must say."""

    id: str
    args: Callable[[Path], list[str]]
    name: str
    content: bytes | None  # None: the path is `special` itself
    says: str
    special: str | None = None
    flags: tuple[str, ...] = field(default=())


def importer_cases(imp: Importer) -> Iterator[Case]:
    good, n = imp.good, imp.noun

    def bad(column: str, value: str) -> list[dict[str, str]]:
        return [good, {**good, column: value}]

    def case(shape: str, content: bytes, says: str, name: str = "in.csv", *flags: str) -> Case:
        return Case(f"{n}-{shape}", imp.args, name, content, says, flags=flags)

    yield case("latin-1", csv_bytes(bad(imp.text, "Café"), encoding="latin-1"), "not UTF-8 text: byte 0xe9 at offset")
    yield case("utf-16", csv_bytes([good], encoding="utf-16"), "the file is UTF-16")
    yield case("semicolons", csv_bytes([good], delimiter=";"), "delimiter looks like ';' (use --delimiter ';')")
    yield case("tabs", csv_bytes([good], delimiter="\t"), "delimiter looks like '\\t'")
    yield case("declared-wrong", csv_bytes([good]), "delimiter looks like ','", "in.csv", "--delimiter", ";")
    yield case("field-over-128k", csv_bytes(bad(imp.text, "x" * 200_000)), "a field is longer than 131,072 characters")
    yield case("line-over-1mb", csv_bytes([good]) + b"a," * 600_000, "line 3 is longer than 1,048,576 characters")
    yield case("nul-bytes", csv_bytes([good]) + b"\x00" * 2_000_000, "line 3 is longer than")
    yield case("more-values", csv_bytes([good]) + b",".join([b"x"] * (len(good) + 2)) + b"\n", "values but the header")
    header = ",".join([*good, next(iter(good))]).encode() + b"\n"
    yield case("column-twice", header, "appears twice")
    yield case("no-columns", b"foo,bar\n1,2\n", "missing column(s)")
    yield case("empty-required", csv_bytes(bad(next(iter(good)), "")), "value is required")
    if imp.number:
        for shape, value, says in (
            ("comma-decimal", "1,5", "'1,5' is not a number (use a decimal point, or --decimal-comma)"),
            ("thousands", "1,000", "'1,000' is not a number"),
            ("nan-text", "nan", "'nan' is not a number"),
            ("infinity-text", "Infinity", "'Infinity' is not a number"),
            ("overflow", "1e999", "'1e999' is not a finite number"),
            ("underscores", "1_000", "'1_000' is not a number"),
            ("arabic-digits", "١٢", "'١٢' is not a number"),
            ("a-word", "lots", "'lots' is not a number"),
        ):
            yield case(shape, csv_bytes(bad(imp.number, value)), f"row 3, column '{imp.number}': {says}")
        yield case(
            "comma-with-decimal-comma",
            csv_bytes(bad(imp.number, "1.5"), delimiter=";"),
            "decimal comma expected",
            "in.csv",
            "--delimiter",
            ";",
            "--decimal-comma",
        )
    if imp.moment:
        for shape, value, says in (
            ("year-99999", "99999-01-01", "is not a date"),
            ("year-9999-offset", "9999-12-31T23:00:00-05:00", "is outside the years 1900..2999"),
            ("year-1-offset", "0001-01-01T00:30:00+01:00", "is outside the years 1900..2999"),
            ("year-1899", "1899-12-31", "is outside the years 1900..2999"),
            ("not-a-date", "yesterday", "is not a date"),
        ):
            if n == "accounts" and "T" in value:
                value = value.split("T")[0]
            yield case(shape, csv_bytes(bad(imp.moment, value)), f"row 3, column '{imp.moment}': '{value}' {says}")
    single = f"row 2, column '{imp.text}': expected a single value, found"
    for shape, literal, says in (
        ("json-nan", "NaN", "row 2: NaN is not a finite number"),
        ("json-infinity", "-Infinity", "row 2: -Infinity is not a finite number"),
        ("json-1e999", "1e999", "row 2: 1e999 is not a finite number"),
        ("json-huge-int", "9" * 5000, "row 2: an integer of 5000 digits is out of range"),
        ("json-object-for-name", '{"first": "x"}', f"{single} an object"),
        ("json-list-for-name", '["x"]', f"{single} a list"),
        ("json-bool-for-name", "true", f"{single} true or false"),
        ("json-deep", "[" * 100_000 + "]" * 100_000, "row 2: nested too deeply"),
        ("json-huge-record", json.dumps("x" * 1_100_000), "row 2 is longer than 1,048,576 characters"),
    ):
        rows = [good, {k: v for k, v in good.items() if k != imp.text}]
        yield case(shape, json_text(rows, {imp.text: literal}), says, "in.json")
    for shape, content, says in (
        ("json-object", b'{"a": 1}', "expected a JSON list of objects"),
        ("json-numbers", b"[1, 2]", "row 1: expected an object, found a number"),
        ("json-truncated", json_text([good])[:-5], "invalid JSON"),
        ("json-trailing", json_text([good]) + b" xyz", "extra data after the list"),
        ("json-latin-1", json.dumps([{**good, imp.text: "Café"}], ensure_ascii=False).encode("latin-1"), "byte 0xe9"),
        ("json-empty", b"", "expected a JSON list of objects"),
    ):
        yield case(shape, content, says, "in.json")
    yield Case(f"{n}-dev-zero", imp.args, "", None, "not a regular file", special="/dev/zero")
    yield Case(f"{n}-missing", imp.args, "", None, "cannot read: No such file", special="/no/such/file.csv")


@dataclass(frozen=True)
class Loader:
    """A YAML loader: the command, a good file, and replacements that make it bad in its own terms."""

    name: str
    args: Callable[[Path], list[str]]
    good: str
    bad: tuple[tuple[str, str, str, str], ...]  # (shape, old, new, what the message says)


LOADERS = (
    Loader(
        "model-validate",
        lambda path: ["model", "validate", str(path)],
        (EXAMPLES / "scoring.yaml").read_text(),
        (
            ("weight-nan", "weight: 30", "weight: .nan", "'.nan' is not a finite number"),
            ("weight-inf", "weight: 30", "weight: -.inf", "'-.inf' is not a finite number"),
            ("weight-int64", "weight: 30", "weight: 9223372036854775808", "out of range"),
            ("max-age-huge", "max_age: 7d", "max_age: 99999999999d", "longer than 36525d"),
            ("weight-mapping", "weight: 30", "weight: {a: 1}", "weight"),
        ),
    ),
    Loader(
        "rules-validate",
        lambda path: ["rules", "validate", str(path)],
        (EXAMPLES / "rules.yaml").read_text(),
        (
            ("gte-nan", "{gte: 15}", "{gte: .nan}", "'.nan' is not a finite number"),
            ("gte-inf", "{gte: 15}", "{gte: .inf}", "'.inf' is not a finite number"),
            ("due-in-huge", "due_in: 2d", "due_in: 99999999999d", "longer than 36525d"),
            ("cooldown-huge", "cooldown: 14d", "cooldown: 999999999999999999999999999999d", "expected a duration"),
            ("id-mapping", "id: drop-with-complaints", "id: {a: 1}", "id"),
        ),
    ),
    Loader(
        "review-fill",
        lambda path: ["--as", "bob", "review", "fill", "1", str(path)],
        (EXAMPLES / "review.yaml").read_text(),
        (
            ("date-99999", "next_review_date: 2027-02-24", "next_review_date: 99999-01-01", "next_review_date"),
            ("date-impossible", "next_review_date: 2027-02-24", "next_review_date: 2027-02-30", "invalid value"),
            ("severity-mapping", "severity: high", "severity: {a: 1}", "severity"),
            ("goals-nan", "employee_comments: Champion", "employee_comments: .nan #", "not a finite number"),
        ),
    ),
)


def loader_cases(loader: Loader) -> Iterator[Case]:
    good = loader.good

    def case(shape: str, content: bytes, says: str) -> Case:
        return Case(f"{loader.name}-{shape}", loader.args, "in.yaml", content, says)

    for shape, old, new, says in loader.bad:
        assert old in good, (loader.name, old)
        yield case(shape, good.replace(old, new, 1).encode(), says)
    yield case("latin-1", (good + "# Café\n").encode("latin-1"), "not UTF-8 text: byte 0xe9 at offset")
    yield case("utf-16", good.encode("utf-16"), "the file is UTF-16")
    yield case("billion-laughs", (good + BOMB).encode(), "over 1,000,000 values once aliases are expanded")
    yield case("recursive-alias", (good + "loop: &r [*r]\n").encode(), "an alias refers to a node that contains it")
    yield case("deep-flow", (good + "deep: " + "[" * 10_000 + "]" * 10_000 + "\n").encode(), "nested deeper than 64")
    deep_block = "".join(f"{'  ' * i}k{i}:\n" for i in range(100)) + "  " * 100 + "x\n"
    yield case("deep-block", (good + deep_block).encode(), "nested deeper than 64")
    aliased = "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[*a, " * 40 + "]" * 40 + "\n"  # 80 deep through *a
    yield case("aliases-deep", (good + aliased).encode(), "nested deeper than 64 levels once aliases are expanded")
    yield case("over-5mb", (good + "#" + "x" * 6_000_000 + "\n").encode(), "over the limit of 5,242,880 bytes")
    yield case("huge-int", (good + "big: " + "9" * 5000 + "\n").encode(), "has over 30 digits")
    yield case("set-tag", (good + "odd: !!set {a, b}\n").encode(), "YAML tag 'set' is not supported")
    yield case("binary-tag", (good + "odd: !!binary aGVsbG8=\n").encode(), "YAML tag 'binary' is not supported")
    yield case("python-tag", (good + "odd: !!python/object/apply:os.system [ls]\n").encode(), "invalid YAML")
    yield case("duplicate-key", (good + "zz: 1\nzz: 2\n").encode(), "duplicate key 'zz'")
    yield case("tab-indent", (good + "tabbed:\n\t- x\n").encode(), "invalid YAML")
    if loader.name != "review-fill":  # an empty form fills nothing: not an error
        yield case("empty", b"", "in.yaml")
    yield case("a-list", b"- 1\n- 2\n", "in.yaml")
    yield Case(f"{loader.name}-dev-zero", loader.args, "", None, "not a regular file", special="/dev/zero")
    yield Case(f"{loader.name}-missing", loader.args, "", None, "cannot read: No such file", special="/no/such.yaml")


CASES = [case for imp in IMPORTERS for case in importer_cases(imp)] + [
    case for loader in LOADERS for case in loader_cases(loader)
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_error_line_exit_2_and_changes_nothing(world: World, case: Case) -> None:
    path = Path(case.special) if case.special else world.file(case.name, case.content or b"")
    before = world.dump()
    result = world.run(*case.args(path), *case.flags)
    assert "Traceback" not in result.output
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert str(path) in errors[0], result.stderr
    assert all(str(path) in line for line in result.stderr.splitlines()), result.stderr
    assert case.says in result.stderr, result.stderr
    assert result.stdout == ""
    assert world.dump() == before


def test_the_corpus_covers_every_loader_and_importer() -> None:
    prefixes = {case.id.split("-")[0] for case in CASES}
    assert prefixes == {
        "accounts", "readings", "surveys", "issues", "users", "cashflows", "financials", "model", "rules", "review",
    }  # fmt: skip
    assert len(CASES) >= 200
