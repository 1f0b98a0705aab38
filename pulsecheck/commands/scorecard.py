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

    when = app.end_of_day(parse_day(as_of, "--as-of")) if as_of else None
    with app.transaction() as session:
        data = build(session, account, when, limit)
    if as_json:
        emit_json(data)
        return
    for line in lines(data):
        echo_data(line)


@scorecard.command("export")
@click.argument("account")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
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
    with app.transaction() as session:
        data = build(session, account, when)
    text = render(data, fmt)
    if output:
        write_atomic(text, output)
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def lines(data: dict[str, Any]) -> list[str]:
    """The scorecard as terminal lines (the caller strips control characters)."""
    acc = data["account"]
    vector = data["success_vector"]
    out = [
        f"{acc['id']} {acc['name']}  segment {acc['segment'] or '-'}  ARR {_num(acc['arr'])}  "
        f"renewal {acc['renewal_date'] or '-'}  owner {acc['owner'] or '-'}",
        f"score {_num(data['score'])} ({data['bucket'] or '-'}){' provisional' if data['provisional'] else ''}"
        f" as of {data['as_of'][:10]}, model {data['model_version']}",
        f"success vector: {vector['direction']} (change {_num(vector['change'])} over {vector['window_days']} days)",
    ]
    if data["groups"]:
        out.append("groups:")
        out += [f"  {'  ' * g['depth']}{g['label']} ({g['name']}): {_num(g['subscore'])}" for g in data["groups"]]
    out.append(f"  {'kpi':<20} {'raw':>10} {'normalized':>10} {'weight':>6} {'contrib':>8}  rating")
    for k in data["kpis"]:
        out.append(
            f"  {k['kpi']:<20} {_num(k['raw']):>10} {_num(k['normalized']):>10} {_num(k['weight']):>6} "
            f"{_num(k['contribution']):>8}  {k['rating'] or k['status']}"
        )
    out.append(f"areas of concern: {', '.join(data['concerns']) or 'none'}")
    out.append(f"strengths: {', '.join(data['strengths']) or 'none'}")
    if data["history"]:
        out.append("history:")
        for h in data["history"]:
            subs = ", ".join(f"{n} {_num(v)}" for n, v in h["groups"].items())
            out.append(f"  {h['as_of'][:10]}  {_num(h['score']):>6}  {h['bucket'] or '-'}  {subs}")
    return out


COMMANDS = [scorecard]
