"""What every command module shares: the App it is handed, JSON and table output, date options, file problems."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import click

from pulsecheck.app import App
from pulsecheck.errors import InputError

__all__ = [
    "App",
    "emit_json",
    "every_problem",
    "file_format",
    "import_options",
    "json_option",
    "parse_day",
    "pass_app",
    "table",
]


def emit_json(data: Any) -> None:
    """Print `data` as the readable JSON of every `--json` option."""
    from pulsecheck.jsontext import readable_json

    click.echo(readable_json(data))


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], title: str | None = None) -> None:
    """Print a table with rich (imported only by listing commands)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    t = Table(*headers, title=title, show_lines=False, header_style="bold")
    for row in rows:
        t.add_row(*(Text("" if v is None else str(v)) for v in row))  # Text: "[...]" in data is not markup
    Console(width=max(100, _terminal_width())).print(t)


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 120


pass_app = click.make_pass_decorator(App)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (stable keys, see README).")


@contextmanager
def every_problem(file: str) -> Iterator[None]:
    """Print each problem of a file that failed validation on stderr, then fail with a one-line count."""
    from pulsecheck.errors import ValidationFailed

    try:
        yield
    except ValidationFailed as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise InputError(f"{file}: {len(exc.problems)} problem(s)") from None


def import_options(command: Any) -> Any:
    """The options every import command has: the CSV delimiter and the decimal mark."""
    command = click.option(
        "--decimal-comma", is_flag=True, help="Numbers are written with a decimal comma (1,5); no thousands separators."
    )(command)
    return click.option("--delimiter", metavar="CHAR", help="CSV delimiter (default ','; e.g. ';' or '\\t').")(command)


def file_format(delimiter: str | None, decimal_comma: bool) -> Any:
    """The FileFormat of an import command's options (`\\t` or `tab` means a tab)."""
    from pulsecheck.workflow.imports import FileFormat

    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    return FileFormat(delimiter=delimiter, decimal_comma=decimal_comma)


def parse_day(value: str, name: str) -> date:
    """A command-line date, or an InputError naming the option."""
    from pulsecheck.timeutil import parse_date

    try:
        return parse_date(value)
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from None


