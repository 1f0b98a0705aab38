"""audit: verify the tamper-evident record."""

from __future__ import annotations

import click

from pulsecheck.commands.common import App, emit_json, json_option, pass_app
from pulsecheck.errors import RefusedError


@click.group()
def audit() -> None:
    """The audit chain: every audited change, hash-linked in the order it was committed."""


@audit.command("verify")
@json_option
@pass_app
def audit_verify(app: App, as_json: bool) -> None:
    """Walk the chain and check every audited row against it; exit 1 naming the first problem.

    \b
    Example:
      pulsecheck audit verify
    """
    from pulsecheck.workflow.audit import verify_chain

    with app.transaction() as session:
        report = verify_chain(session)
    if as_json:
        emit_json(report.as_dict())
        if not report.ok:
            raise SystemExit(1)
        return
    if not report.ok:
        for problem in report.problems[1:]:
            click.echo(f"  also: {problem}", err=True)
        raise RefusedError(f"audit chain broken at {report.problems[0]}")
    click.echo(f"audit chain ok: {report.entries} entries, {report.records} records agree with it")


COMMANDS = [audit]
