"""audit: verify the tamper-evident record, and export its signed sign-offs for an auditor."""

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

    with app.reading() as connection:
        report = verify_chain(connection)
    if as_json:
        emit_json(report.as_dict())
        if not report.ok:
            raise SystemExit(1)
        return
    if not report.ok:
        for problem in report.problems[1:]:
            click.echo(f"  also: {problem}", err=True)
        raise RefusedError(f"audit chain broken at {report.problems[0]}")
    click.echo(
        f"audit chain ok: {report.entries} entries, {report.records} records agree with it, "
        f"{report.signatures} signatures verify"
    )


@audit.command("export")
@click.argument("directory", type=click.Path(file_okay=False))
@pass_app
def audit_export(app: App, directory: str) -> None:
    """Write an OpenSSH allowed_signers file and every signed sign-off (statement and signature) to DIRECTORY,
    with the `ssh-keygen -Y verify` command of each in README.txt: an auditor needs OpenSSH, not pulsecheck.

    \b
    Example:
      pulsecheck audit export audit-2026q4 && sh audit-2026q4/verify.sh
    """
    from pathlib import Path

    from pulsecheck.workflow.signoffs import export

    with app.transaction() as session:
        result = export(session, Path(directory))
    click.echo(f"{result.directory}: {result.entries} signed sign-offs, {result.keys} keys in allowed_signers")


COMMANDS = [audit]
