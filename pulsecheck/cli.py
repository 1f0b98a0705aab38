"""The `pulsecheck` command line: parse, call a service, render (plain text, a table, or --json)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from pulsecheck.errors import PulsecheckError


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# The root group's options, accepted anywhere on the line; no subcommand defines an option of these names.
GLOBAL_OPTIONS = ("--db", "--config", "--as")


def hoist_global_options(args: Sequence[str]) -> list[str]:
    """`args` with the global options and their values moved to the front (`--db X` and `--db=X`), so that
    `review list --mine --as alice` means `--as alice review list --mine`; nothing after `--` moves."""
    front: list[str] = []
    rest: list[str] = []
    position = 0
    while position < len(args):
        arg = args[position]
        if arg == "--":
            rest.extend(args[position:])
            break
        if arg in GLOBAL_OPTIONS:
            if position + 1 == len(args):  # moved to the front, it would take the subcommand's name as its value
                raise click.BadOptionUsage(arg, f"Option '{arg}' requires an argument.")
            front.extend(args[position : position + 2])
            position += 2
            continue
        name, equals, _ = arg.partition("=")
        (front if equals and name in GLOBAL_OPTIONS else rest).append(arg)
        position += 1
    return front + rest


class PulsecheckGroup(click.Group):
    """Turns every error into one `error: ...` line and the exit codes of the CLI contract; takes the global
    options anywhere on the line."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_every_command()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            from pulsecheck.commands.examples import attach

            module_names = COMMAND_MODULES.get(cmd_name)
            candidates = (
                {c.name: c for c in commands_of(*module_names)} if module_names else _every_command()
            )
            if cmd_name in candidates:
                self.add_command(candidates[cmd_name])
                attach(self)  # the help table's examples and option help, for what is loaded
        return self.commands.get(cmd_name)

    def main(self, *args: Any, **kwargs: Any) -> Any:
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
    """Customer health reviews, escalation rules and their schedule.

    --db, --config and --as may also come after the subcommand.
    """
    from pulsecheck.app import App
    from pulsecheck.config import checked, load_settings

    settings = load_settings(db=db_url, config=config_file, user=as_user, remembered=checked.default_dir())
    ctx.obj = App(settings, ctx.invoked_subcommand, lambda line: click.echo(line, err=True))


# Each command's module, so that a command imports its own module only (a cold start pays for one noun, not
# every one). A command missing here is still found, by importing every module (tests/cli/test_cold_start_imports.py
# checks the table is complete).
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "init": ("setup",), "db": ("setup",), "users": ("setup", "web"), "accounts": ("setup",), "review": ("review",),
    "readings": ("scoring",), "surveys": ("scoring",), "issues": ("scoring",), "cashflows": ("scoring",),
    "financials": ("scoring",), "model": ("scoring",),
    "score": ("scoring",), "deviations": ("scoring",), "rules": ("rules",), "evaluate": ("rules",),
    "escalations": ("escalations",), "scheduler": ("scheduler",), "outbox": ("outbox",), "cycle": ("cycle",),
    "report": ("report",), "audit": ("audit",), "demo": ("demo",), "config": ("config",), "keys": ("keys",),
    "worker": ("worker",), "serve": ("web",), "inbox": ("inbox",), "tokens": ("tokens",), "scorecard": ("scorecard",),
}  # `users password` and `users invite` live with the web app that uses them


def commands_of(*module_names: str) -> list[click.Command]:
    """The top-level commands the `pulsecheck.commands` modules define (their COMMANDS)."""
    import importlib

    return [
        command
        for module_name in module_names
        for command in importlib.import_module(f"pulsecheck.commands.{module_name}").COMMANDS
    ]


def _every_command() -> dict[str, click.Command]:
    modules = dict.fromkeys(name for names in COMMAND_MODULES.values() for name in names)
    return {command.name or "": command for command in commands_of(*modules)}


def main() -> None:
    """Console-script entry point."""
    import os

    from pulsecheck.collector import exit_now, pause_collector

    pause_collector()  # until the command opens its database (pulsecheck.collector says why)

    # pydantic scans every installed distribution's entry points for plugins when it builds its first validator,
    # on every start; pulsecheck uses none (set the variable to '' to have them loaded).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        cli.main(prog_name="pulsecheck")
    except SystemExit as done:
        exit_now(done.code)
    exit_now(0)
