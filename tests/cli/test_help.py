"""Every command's help ends with an example, every option says what it does, every import lists its columns."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from pulsecheck.cli import cli


def leaves(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, click.Command]]:
    """Every command a user can run, walked from the root (a plain walk, not the code's own)."""
    found: list[tuple[str, click.Command]] = []
    ctx = click.Context(group)
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            found += leaves(command, (*path, name))
        else:
            found.append((" ".join((*path, name)), command))
    return found


COMMANDS = leaves(cli)


def test_the_walk_finds_the_whole_tree() -> None:
    paths = {path for path, _ in COMMANDS}
    assert {"inbox", "accounts list", "review risk add", "escalations ack", "accounts reassign"} <= paths
    assert len(paths) > 60


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_help_has_a_one_line_example_and_every_option_has_help(path: str, command: click.Command) -> None:
    text = CliRunner().invoke(cli, [*path.split(), "--help"]).output
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    at = next((n for n, line in enumerate(lines) if line.startswith("Example:")), None)
    assert at is not None, text
    # `Example: pulsecheck ...` on one line, or `Example:` with the command on the next line
    example = lines[at].removeprefix("Example:").strip() or lines[at + 1]
    for prefix in ("EDITOR=nano ", "pulsecheck --as olga ", "pulsecheck --as maria "):
        example = example.replace(prefix, "pulsecheck " if prefix.startswith("pulsecheck") else "")
    assert example.startswith(f"pulsecheck {path}"), example  # the example runs this very command
    undocumented = [  # a hidden option is the CLI talking to itself (evaluate's local workers), not a user's
        p.opts[0] for p in command.params if isinstance(p, click.Option) and not p.help and not p.hidden
    ]
    assert undocumented == []
    assert command.get_short_help_str(), f"{path} has no description"


@pytest.mark.parametrize("noun", ["accounts", "users", "readings", "surveys", "issues", "cashflows", "financials"])
def test_every_import_lists_its_columns_and_formats(noun: str) -> None:
    text = CliRunner().invoke(cli, [noun, "import", "--help"]).output
    assert "Columns:" in text and "CSV" in text and "JSON" in text
