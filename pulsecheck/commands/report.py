"""report: the portfolio picture as a terminal summary, JSON, or one self-contained HTML file."""

from __future__ import annotations

import click

from pulsecheck.commands.common import App, emit_json, json_option, parse_day, pass_app


@click.group()
def report() -> None:
    """Reports for managers and audits."""


@report.command("portfolio")
@click.option("--as-of", "as_of", metavar="DATE", help="As of the end of DATE (default: now).")
@click.option("--segment", metavar="S", help="Only the accounts of segment S.")
@click.option("--html", "html", metavar="FILE", help="Write one self-contained HTML file (opens offline).")
@json_option
@pass_app
def report_portfolio(app: App, as_of: str | None, segment: str | None, html: str | None, as_json: bool) -> None:
    """Buckets, ARR at risk, score distribution and trend, KPI groups, at-risk accounts with their KPIs and
    scorecards, owners, overdue reviews, open escalations and deviations."""
    from pulsecheck.reports.files import check_writable, write_atomic
    from pulsecheck.reports.portfolio import render_html, terminal_summary
    from pulsecheck.workflow.portfolio import SCORECARD_PAGES, build_portfolio

    when = app.now()
    if as_of:
        when = app.end_of_day(parse_day(as_of, "--as-of"))
    target = check_writable(html, "--html") if html else None
    priority = app.settings.priority_matrix()
    with app.reading() as connection:  # on Core (issue 17): the ORM only for the scorecards, when asked for
        # The at-risk scorecards (a few queries each) only for the file and the JSON; the summary shows none.
        data = build_portfolio(connection, when, priority, segment, SCORECARD_PAGES if target or as_json else 0)
    if target is not None:
        write_atomic(render_html(data, app.now()), target, "--html")
    if as_json:
        emit_json(data.as_dict() | ({"html": str(target)} if target else {}))
    elif target is not None:
        click.echo(f"wrote {target} ({len(data.at_risk)} at risk, {data.accounts} accounts)")
    else:
        from rich.console import Console

        Console(highlight=False, width=max(100, _width())).print(terminal_summary(data))


def _width() -> int:
    import shutil

    return shutil.get_terminal_size((120, 40)).columns


COMMANDS = [report]
