"""scorecard: an account's scorecard on the terminal or as JSON, exported as a document, submitted and approved."""

from __future__ import annotations

from typing import Any

import click

from pulsecheck.commands.common import App, echo_data, emit_json, json_option, parse_day, pass_app


class _ShowByDefault(click.Group):
    """`scorecard ACCOUNT` is `scorecard show ACCOUNT`: an argument that names no subcommand is an account."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ShowByDefault)
def scorecard() -> None:
    """An account's scorecard: `scorecard ACCOUNT`, `export`, `submit`, `approve`, `reject`."""


@scorecard.command("show")
@click.argument("account")
@click.option("--as-of", "as_of", metavar="DATE", help="The newest snapshot at or before the end of DATE.")
@click.option("--history", "limit", default=6, show_default=True, help="How many snapshots of subscores to show.")
@json_option
@pass_app
def scorecard_show(app: App, account: str, as_of: str | None, limit: int, as_json: bool) -> None:
    """Score, bucket, group subscores, each KPI's value and rating, concerns, strengths, trend and history."""
    from pulsecheck.workflow.scorecards import scorecard as build
    from pulsecheck.workflow.scorecards import terminal_lines

    when = app.end_of_day(parse_day(as_of, "--as-of")) if as_of else None
    with app.reading() as connection:  # on Core: a read command imports no ORM (issue 17)
        data = build(connection, account, when, limit)
    if as_json:
        emit_json(data)
        return
    for line in terminal_lines(data):
        echo_data(line)


@scorecard.command("export")
@click.argument("account")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True,
              help="md: Markdown (escaped); html: one offline page, safe like the report.")
@click.option("--as-of", "as_of", metavar="DATE", help="The newest snapshot at or before the end of DATE.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@pass_app
def scorecard_export(app: App, account: str, fmt: str, as_of: str | None, output: str | None) -> None:
    """The scorecard as a Markdown or offline HTML document."""
    from pulsecheck.reports.files import check_writable, write_atomic
    from pulsecheck.reports.scorecard import render
    from pulsecheck.workflow.scorecards import scorecard as build

    when = app.end_of_day(parse_day(as_of, "--as-of")) if as_of else None
    if output:
        check_writable(output)
    with app.reading() as connection:
        data = build(connection, account, when)
    text = render(data, fmt)
    if output:
        write_atomic(text, output)
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


@scorecard.command("submit")
@click.argument("account")
@click.option("--as-of", "as_of", metavar="DATE", help="The newest snapshot at or before the end of DATE.")
@click.option("--approver", metavar="NAME", help="Who approves it [default: your manager].")
@click.option("--comment", help="A note for the approver.")
@click.option("--attach", "attach", metavar="FILE", help="Attach a file (the uploaded copy of the scorecard).")
@json_option
@pass_app
def scorecard_submit(
    app: App, account: str, as_of: str | None, approver: str | None, comment: str | None, attach: str | None,
    as_json: bool,
) -> None:
    """Submit the account's scorecard as it is now for approval by someone else (four-eyes)."""
    from pulsecheck.workflow.attachments import read_upload
    from pulsecheck.workflow.scorecard_approvals import record_dict, submit

    when = app.end_of_day(parse_day(as_of, "--as-of")) if as_of else None
    upload = read_upload(attach, app.settings.attachments.max_size, "--attach") if attach else None
    with app.transaction() as session:
        row = submit(session, account, app.actor(session), app.now(), when, approver, comment, upload)
        data = record_dict(session, row)
    _report(data, as_json)


def _decide(app: App, scorecard_id: int, event: str, comment: str | None, as_json: bool) -> None:
    from pulsecheck.workflow.scorecard_approvals import decide, record_dict

    with app.transaction() as session:
        data = record_dict(session, decide(session, scorecard_id, event, app.actor(session), app.now(), comment))
    _report(data, as_json)


@scorecard.command("approve")
@click.argument("scorecard_id", metavar="ID", type=int)
@click.option("--comment", help="A note on the decision.")
@json_option
@pass_app
def scorecard_approve(app: App, scorecard_id: int, comment: str | None, as_json: bool) -> None:
    """Approve a submitted scorecard (not your own)."""
    _decide(app, scorecard_id, "approve", comment, as_json)


@scorecard.command("reject")
@click.argument("scorecard_id", metavar="ID", type=int)
@click.option("--comment", help="Why (required).")
@json_option
@pass_app
def scorecard_reject(app: App, scorecard_id: int, comment: str | None, as_json: bool) -> None:
    """Reject a submitted scorecard (not your own), saying why."""
    _decide(app, scorecard_id, "reject", comment, as_json)


def _report(data: dict[str, Any], as_json: bool) -> None:
    from pulsecheck.workflow.scorecards import number

    if as_json:
        emit_json(data)
        return
    echo_data(
        f"scorecard {data['id']} of {data['account']} (score {number(data['score'])}, {data['bucket'] or '-'}): "
        f"{data['state']}; submitted by {data['submitted_by']}, approver {data['approver'] or '-'}"
        + (f", decided by {data['approved_by']}" if data["approved_by"] else "")
        + f"; sha256 {data['digest'][:16]}"
    )
    for item in data["attachments"]:
        echo_data(f"  attachment {item['number']}: {item['filename']} sha256 {item['sha256'][:16]}")


COMMANDS = [scorecard]
