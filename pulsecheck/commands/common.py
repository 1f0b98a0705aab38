"""What every command module shares: the App it is handed, JSON, table and data output (control characters
stripped), date options, file problems."""

from __future__ import annotations

import functools
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
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
    "owner_options",
    "paged",
    "parse_day",
    "pass_app",
    "print_page",
    "show",
    "show_markdown",
    "table",
    "whose",
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


def table(
    rows: Sequence[Sequence[Any]], headers: Sequence[str], title: str | None = None, *, after: str | None = None
) -> None:
    """Print a table that fits the terminal (long cells wrap), then the line `after`; through the pager on a
    terminal when it is taller than the screen."""
    text = render_table(rows, headers, title)
    show(text + (f"{after}\n" if after else ""))


def render_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], title: str | None = None) -> str:
    """A table as text as wide as the terminal at most (rich, imported only by the commands that print one)."""
    import io

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    t = Table(*headers, title=Text(strip_controls(title)) if title else None, show_lines=False, header_style="bold")
    for row in rows:
        # Text: "[...]" in data is not markup; rich strips only a few control characters, so strip them all first.
        t.add_row(*(Text("-" if v is None else strip_controls(str(v))) for v in row))
    out = io.StringIO()
    tty = is_terminal()
    Console(file=out, width=terminal_width(), force_terminal=tty, no_color=not tty, highlight=False).print(t)
    return out.getvalue()


def is_terminal() -> bool:
    """Whether stdout is a terminal a person reads (not a pipe, a file or a test runner)."""
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


def terminal_width() -> int:
    """The terminal's columns (COLUMNS wins; 120 when the output is not a terminal)."""
    return shutil.get_terminal_size((120, 24)).columns


def show(text: str) -> None:
    """Print text that may be long: through click's pager on a terminal when it has more lines than the screen."""
    if is_terminal() and text.count("\n") >= shutil.get_terminal_size((120, 24)).lines - 1:
        click.echo_via_pager(text)
    else:
        click.echo(text, nl=False)


def show_markdown(text: str) -> None:
    """Markdown rendered with rich on a terminal (headings, lists, tables), as it is when piped; control
    characters stripped either way."""
    text = strip_controls(text)
    if not is_terminal():
        click.echo(text, nl=False)
        return
    import io

    from rich.console import Console
    from rich.markdown import Markdown

    out = io.StringIO()
    Console(file=out, width=terminal_width(), force_terminal=True).print(Markdown(text))
    show(out.getvalue())


# --- lists: one page cut in SQL, the same options on every list ------------------------------------------

DEFAULT_PAGE = 50
"""Rows a list shows on a terminal when --limit is not given; piped or --json, a list prints every row."""


def paged(sorts: Sequence[str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a list command --limit, --offset and --sort (one of `sorts`, the first the default); the command
    receives them as one `page: PageRequest`."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def run(*args: Any, limit: int | None, offset: int, sort: str | None, **kwargs: Any) -> Any:
            from pulsecheck.storage.paging import PageRequest

            if limit is None and is_terminal() and not kwargs.get("as_json"):
                limit = DEFAULT_PAGE
            return command(*args, page=PageRequest(limit=limit, offset=offset, sort=sort), **kwargs)

        run = click.option(
            "--sort", type=click.Choice(list(sorts)), help=f"Order of the rows [default: {sorts[0]}]."
        )(run)
        run = click.option(
            "--offset", type=click.IntRange(min=0), default=0, metavar="N", help="Skip the first N rows."
        )(run)
        return click.option(
            "--limit",
            type=click.IntRange(min=1),
            metavar="N",
            help=f"At most N rows [default: {DEFAULT_PAGE} on a terminal, all when piped or with --json].",
        )(run)

    return decorate


def owner_options(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--owner U and --mine (the acting user) for a list whose rows have an owner (`what` says which person)."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option("--mine", is_flag=True, help=f"Only rows where I am {what}.")(command)
        return click.option("--owner", metavar="U", help=f"Only rows where U is {what}.")(command)

    return decorate


def whose(app: App, session: Any, owner: str | None, mine: bool, option: str = "--owner") -> str | None:
    """The person --owner (`option`) or --mine names (None: everyone); both at once is a usage error."""
    if owner and mine:
        raise InputError(f"{option} and --mine: give one of them")
    return app.identity(session).acting if mine else owner


def print_page(page: Any, as_json: bool, rows: Callable[[Any], Sequence[Any]], headers: Sequence[str]) -> None:
    """A list's output: `--json` the page with its total; else a table of the rows and, when rows are left
    out, a line saying how many and how to see them."""
    if as_json:
        emit_json(page.to_dict())
        return
    if not page.items:
        past = f" (offset {page.offset} is past the last of {page.total})" if page.total else ""
        click.echo(f"nothing to list{past}")
        return
    after = f"{page.remaining:,} more (use --offset/--limit)" if page.remaining else None
    table([rows(item) for item in page.items], headers, after=after)


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


