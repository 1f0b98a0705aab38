"""The `pulsecheck` command line: parse, call a service, render (plain text, a table, or --json)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, time
from typing import TYPE_CHECKING, Any, NoReturn

import click

from pulsecheck.errors import InputError, PulsecheckError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from pulsecheck.config import Settings
    from pulsecheck.storage.db import Database
    from pulsecheck.storage.models import User


class App:
    """What every command needs: settings, the database, the clock and the acting user."""

    def __init__(self, db: str | None, config: str | None, user: str | None) -> None:
        from pulsecheck.config import load_settings

        self.settings: Settings = load_settings(db=db, config=config, user=user)
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            from pulsecheck.storage.db import Database, ensure_schema
            from pulsecheck.workflow import hooks

            self._db = Database(self.settings.database_url)
            ensure_schema(self._db.engine)
            hooks.install(self._db, self.settings)
        return self._db

    def now(self) -> datetime:
        return self.settings.now()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.db.transaction() as session:
            yield session

    def actor(self, session: Session) -> User:
        from pulsecheck.workflow.users import acting_user

        return acting_user(session, self.settings.user)

    def end_of_day(self, day: Any) -> datetime:
        """A date taken as the end of that business day, in UTC."""
        return datetime.combine(day, time(23, 59), tzinfo=self.settings.tz)


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class PulsecheckGroup(click.Group):
    """Turns every error into one `error: ...` line and the exit codes of the CLI contract."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except PulsecheckError as exc:
            fail(str(exc), exc.exit_code)
        except click.exceptions.Abort:
            fail("aborted", 1)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except OSError as exc:
            fail(f"{exc.filename or ''}: {exc.strerror or exc}", 2)
        except Exception as exc:  # a database we cannot reach or a bug: one line, not a traceback
            from sqlalchemy.exc import SQLAlchemyError

            if not isinstance(exc, SQLAlchemyError):
                raise
            fail(f"database error: {getattr(exc, 'orig', None) or exc}".splitlines()[0], 1)
        sys.exit(result if isinstance(result, int) else 0)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


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


def parse_day(value: str, name: str) -> Any:
    from pulsecheck.workflow.imports import parse_date

    try:
        return parse_date(value)
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from None


@click.group(cls=PulsecheckGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_url",
    metavar="URL",
    help="Database URL [env PULSECHECK_DATABASE_URL; default sqlite:///pulsecheck.db].",
)
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    help="Settings file [env PULSECHECK_CONFIG; default ./pulsecheck.toml if present].",
)
@click.option("--as", "as_user", metavar="USER", help="Act as USER [env PULSECHECK_USER; default the OS login].")
@click.version_option(package_name="pulsecheck")
@click.pass_context
def cli(ctx: click.Context, db_url: str | None, config_file: str | None, as_user: str | None) -> None:
    """Customer health reviews, escalation rules and their schedule."""
    ctx.obj = App(db_url, config_file, as_user)


def register(module_names: Sequence[str]) -> None:
    """Attach command groups defined in the cli_* modules."""
    import importlib

    for name in module_names:
        module = importlib.import_module(f"pulsecheck.commands.{name}")
        for command in module.COMMANDS:
            cli.add_command(command)


register(["setup", "review", "scoring", "rules", "escalations", "scheduler", "outbox", "cycle", "report", "demo"])


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="pulsecheck")
