"""rules and evaluate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click

from pulsecheck.commands.common import App, emit_json, every_problem, json_option, parse_day, pass_app, table
from pulsecheck.errors import InputError
from pulsecheck.timeutil import start_of_day


def _end_of(app: App, day: str | None, name: str) -> datetime:
    if not day:
        return app.now()
    return app.end_of_day(parse_day(day, name))


@click.group()
def rules() -> None:
    """Escalation rules files."""


@rules.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_app
def rules_validate(app: App, file: str) -> None:
    """Report every problem in a rules FILE, with its line; every rule is also tried in the engine."""
    from pulsecheck.rules.durable import compile_rules
    from pulsecheck.workflow.rulesets import checked_rules

    with every_problem(file):
        parsed = checked_rules(file, app.settings.limits.yaml())
    shards = compile_rules(parsed)
    click.echo(f"{file}: ok ({len(parsed.rules)} rules, {len(shards)} durable-rules ruleset(s), tried in the engine)")


@rules.command("activate")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_app
def rules_activate(app: App, file: str) -> None:
    """Make FILE the active ruleset (ops or manager), after the checks of `rules validate`."""
    from pulsecheck.workflow.rulesets import activate

    with every_problem(file), app.transaction() as session:
        row = activate(session, file, app.actor(session), app.now(), app.settings.limits.yaml())
        said = f"ruleset {row.name} active (sha256 {row.sha256[:12]}, by {row.activated_by})"
    click.echo(said)


@rules.command("show")
@json_option
@pass_app
def rules_show(app: App, as_json: bool) -> None:
    """The active ruleset."""
    from pulsecheck.workflow.rulesets import active_rules

    with app.transaction() as session:
        row, parsed = active_rules(session)
        data = {
            "name": row.name,
            "sha256": row.sha256,
            "activated_by": row.activated_by,
            "activated_at": row.activated_at.isoformat(),
            "rules": [
                {"id": r.id, "description": r.description, "actions": [a.kind for a in r.actions]} for r in parsed.rules
            ],
        }
    if as_json:
        emit_json(data)
        return
    click.echo(
        f"{data['name']} (sha256 {data['sha256'][:12]}), activated by {data['activated_by']} at {data['activated_at']}"
    )
    table(
        [(r.id, ", ".join(a.kind for a in r.actions), r.description) for r in parsed.rules],
        ["rule", "then", "description"],
    )


@rules.command("explain")
@click.option("--account", required=True)
@click.option("--as-of", "as_of", metavar="DATE")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@json_option
@pass_app
def rules_explain(app: App, account: str, as_of: str | None, file: str | None, as_json: bool) -> None:
    """Every rule (of FILE, else the active ruleset) with each condition's fact value and truth for ACCOUNT."""
    from pulsecheck.rules.evaluator import explain
    from pulsecheck.rules.language import load_rules_file
    from pulsecheck.workflow.accounts import get_account
    from pulsecheck.workflow.evaluation import account_facts
    from pulsecheck.workflow.rulesets import active_rules

    with app.transaction() as session:
        parsed = load_rules_file(file, limits=app.settings.limits.yaml()) if file else active_rules(session)[1]
        found = get_account(session, account)
        facts = account_facts(session, parsed, _end_of(app, as_of, "--as-of"), [found.id])[found.id]
        external_id = found.external_id
    report = explain(parsed, facts)
    if as_json:
        emit_json({"account": external_id, "facts": facts, "rules": report})
        return
    for item in report:
        click.echo(f"{'FIRES' if item['fires'] else 'no   '} {item['rule']}: {item['description']}")
        for c in item["conditions"]:
            click.echo(
                f"      {'true ' if c['result'] else 'false'} {c['fact']} {c['op']} {c['expected']!r} "
                f"(actual {c['actual']!r})"
            )


@rules.command("backtest")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--from", "start", required=True, metavar="DATE")
@click.option("--to", "end", required=True, metavar="DATE")
@json_option
@pass_app
def rules_backtest(app: App, file: str, start: str, end: str, as_json: bool) -> None:
    """Replay FILE over score history: escalations per rule, compared with the active rules."""
    from pulsecheck.errors import RefusedError
    from pulsecheck.rules.language import load_rules_file
    from pulsecheck.workflow.backtest import backtest
    from pulsecheck.workflow.rulesets import active_rules

    parsed = load_rules_file(file, limits=app.settings.limits.yaml())
    first = start_of_day(parse_day(start, "--from"), app.settings.tz)
    last = _end_of(app, end, "--to")
    if last < first:
        raise InputError("--to is before --from")
    with app.transaction() as session:
        candidate = backtest(session, parsed, first, last)
        try:
            active = backtest(session, active_rules(session)[1], first, last)
        except RefusedError:
            active = None
    if as_json:
        emit_json({"file": file, "candidate": candidate, "active": active})
        return
    click.echo(f"{candidate['dates']} snapshot date(s) between {start} and {end}")
    rows = [
        (rule, len(hits), ", ".join(sorted({a for a, _ in hits}))[:60]) for rule, hits in candidate["rules"].items()
    ]
    table(rows, ["rule", "would open", "accounts"], title=file)
    if active is not None:
        total = sum(len(h) for h in active["rules"].values())
        click.echo(
            f"active ruleset: {total} escalation(s); this file: {sum(len(h) for h in candidate['rules'].values())}"
        )


_STAGES = {"facts": "facts", "engine": "rules engine", "apply": "actions"}


@contextmanager
def terminal_progress() -> Iterator[Any]:
    """A `progress(stage, done, total)` callback drawing a rich bar on stderr, or None when stderr is no terminal."""
    import sys

    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description:<13}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(_STAGES.get(stage, stage), total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield progress


@click.command()
@click.option("--dry-run", is_flag=True, help="Print what would happen; write nothing.")
@click.option("--as-of", "as_of", metavar="DATE")
@click.option("--account")
@json_option
@pass_app
def evaluate(app: App, dry_run: bool, as_of: str | None, account: str | None, as_json: bool) -> None:
    """Evaluate the active rules over the portfolio and apply their actions."""
    from pulsecheck.workflow.accounts import get_account
    from pulsecheck.workflow.evaluation import EvaluationSettings
    from pulsecheck.workflow.evaluation import evaluate as run_evaluation

    config = EvaluationSettings.from_settings(app.settings)
    account_id = None
    with app.transaction() as session:
        if not dry_run:  # a dry run writes nothing: anyone may look
            app.require(session, "evaluate")
        if account:
            account_id = get_account(session, account).id
    when = _end_of(app, as_of, "--as-of")
    with terminal_progress() as progress:
        report = run_evaluation(app.db, config, when, app.now(), dry_run, account_id, progress)
    data = {
        "as_of": report.as_of.isoformat(),
        "dry_run": dry_run,
        "run": report.run_id,
        "accounts": report.accounts,
        "firings": [{"account": a, "rule": r} for a, r in report.firings],
        "actions": [vars(p) for p in report.actions],
        "resolved": [vars(p) for p in report.resolved],
        "recovered": report.recovered,
    }
    if as_json:
        emit_json(data)
        return
    for line in report.recovered:
        click.echo(f"{line}: marked failed", err=True)
    prefix = "would " if dry_run else ""
    click.echo(
        f"{'dry run: ' if dry_run else ''}{report.accounts} accounts, {len(report.firings)} firing(s), "
        f"{prefix}apply {len(report.actions)} action(s), {prefix}resolve {len(report.resolved)}"
    )
    for planned in [*report.actions, *report.resolved]:
        click.echo(f"  {planned.account:<12} {planned.rule:<24} {planned.action:<15} {planned.detail}")


COMMANDS = [rules, evaluate]
