"""What every command module shares: the App it is handed, JSON, table and data output (control characters
stripped), date options, file problems."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import click

from pulsecheck.app import App
from pulsecheck.errors import InputError
from pulsecheck.safetext import strip_controls

__all__ = [
    "App",
    "echo_data",
    "emit_json",
    "every_problem",
    "file_format",
    "import_options",
    "json_option",
    "parse_day",
    "pass_app",
    "table",
]

# JSON escapes C0 itself; DEL and C1 (0x9b is a one-byte CSI on some terminals) are written as \u escapes too,
# which is the same JSON value.
_JSON_CONTROLS = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}


def emit_json(data: Any) -> None:
    """Print `data` as the readable JSON of every `--json` option (no raw control character reaches the terminal)."""
    from pulsecheck.jsontext import readable_json

    click.echo(readable_json(data).translate(_JSON_CONTROLS))


def echo_data(text: str, nl: bool = True) -> None:
    """Print text that holds data (a review, a cycle, an account) with control characters and escape sequences
    stripped, so a name like `\\x1b]0;...` cannot drive the terminal."""
    click.echo(strip_controls(text), nl=nl)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], title: str | None = None) -> None:
    """Print a table with rich (imported only by listing commands)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    t = Table(*headers, title=Text(strip_controls(title)) if title else None, show_lines=False, header_style="bold")
    for row in rows:
        # Text: "[...]" in data is not markup; rich strips only a few control characters, so strip them all first.
        t.add_row(*(Text("" if v is None else strip_controls(str(v))) for v in row))
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


def file_format(app: App, delimiter: str | None, decimal_comma: bool) -> Any:
    """The FileFormat of an import command's options (`\\t` or `tab` means a tab), within `[limits]`."""
    from pulsecheck.workflow.imports import FileFormat

    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    return FileFormat(delimiter=delimiter, decimal_comma=decimal_comma, limits=app.settings.limits.imports())


def parse_day(value: str, name: str) -> date:
    """A command-line date, or an InputError naming the option."""
    from pulsecheck.timeutil import parse_date

    try:
        return parse_date(value)
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from None


