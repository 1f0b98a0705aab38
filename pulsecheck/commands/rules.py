"""rules and evaluate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click

from pulsecheck.commands.common import App, echo_data, emit_json, every_problem, json_option, parse_day, pass_app, table
from pulsecheck.errors import InputError
from pulsecheck.safetext import strip_controls
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
    """Report every problem in a rules FILE, with its line (KPI names against the approved model); every rule is
    also tried in the engine."""
    from pulsecheck.rules.durable import compile_rules
    from pulsecheck.rules.lint import lint
    from pulsecheck.workflow.rulesets import checked_rules, kpi_names

    with app.db.transaction() as session:
        kpis = kpi_names(session)
    with every_problem(file):
        parsed = checked_rules(file, kpis, app.settings.yaml_limits())
    shards = compile_rules(parsed)
    _notes(file, parsed, kpis)
    for finding in lint(parsed):  # ids and values come from the file: no control characters to the terminal
        click.echo(strip_controls(f"warning: {finding.text(file)}"), err=True)
    click.echo(f"{file}: ok ({len(parsed.rules)} rules, {len(shards)} durable-rules ruleset(s), tried in the engine)")


@rules.command("lint")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_app
def rules_lint(app: App, file: str) -> None:
    """Rules of FILE that validate but cannot do what was meant: contradictory conditions, thresholds outside a
    fact's range, rules shadowed by another with the same actions (exit 1 when there is any).

    Example: pulsecheck rules lint rules.yaml"""
    from pulsecheck.errors import RefusedError
    from pulsecheck.rules.language import load_rules_file
    from pulsecheck.rules.lint import lint

    with every_problem(file):
        parsed = load_rules_file(file, limits=app.settings.yaml_limits())
    found = lint(parsed)
    for finding in found:
        echo_data(f"warning: {finding.text(file)}")
    if found:
        raise RefusedError(f"{file}: {len(found)} lint finding(s)")
    click.echo(f"{file}: no lint findings ({len(parsed.rules)} rules)")


def _notes(file: str, parsed: Any, kpis: Any) -> None:
    """Say on stderr what validation could not check (KPI names, without an approved model)."""
    from pulsecheck.rules.conditions import leaves
    from pulsecheck.rules.kpis import NO_MODEL, names_kpis

    if kpis.names is None and names_kpis(leaf.fact for rule in parsed.rules for leaf in leaves(rule.when)):
        click.echo(f"note: {file}: {NO_MODEL}", err=True)


@rules.command("test")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--fixtures",
    "fixtures_dir",
    type=click.Path(file_okay=False),
    help="Directory of fixture files [default: beside FILE, its stem + .tests: rules.yaml -> rules.tests/].",
)
@click.option("-v", "--verbose", is_flag=True, help="List the cases that pass too.")
@pass_app
def rules_test(app: App, file: str, fixtures_dir: str | None, verbose: bool) -> None:
    """Run the fixture cases of a rules FILE (facts -> expected firings and actions) through the engine.

    Example: pulsecheck rules test rules.yaml   (runs rules.tests/*.yaml; exit 1 when a case fails)"""
    from pathlib import Path

    from pulsecheck.errors import RefusedError
    from pulsecheck.rules.expectations import run_cases
    from pulsecheck.rules.fixtures import default_dir, fixture_files, load_fixtures
    from pulsecheck.rules.language import load_rules_file

    with every_problem(file):
        parsed = load_rules_file(file, limits=app.settings.yaml_limits())
    directory = Path(fixtures_dir) if fixtures_dir else default_dir(file)
    paths = fixture_files(directory)
    with every_problem(str(directory)):
        cases = load_fixtures(paths, parsed)
    outcomes = run_cases(parsed, cases, app.settings.priority_matrix())
    for outcome in outcomes:  # names and values come from files: echo_data strips control characters
        if outcome.passed and verbose:
            echo_data(f"ok   {outcome.case.where} {outcome.case.name}")
        elif not outcome.passed:
            echo_data(f"FAIL {outcome.case.where} {outcome.case.name}")
            for line in outcome.problems:
                echo_data(f"     {line}")
    failed = sum(not outcome.passed for outcome in outcomes)
    summary = f"{len(outcomes)} case(s) in {len(paths)} fixture file(s) of {directory}"
    if failed:
        raise RefusedError(f"{file}: {failed} of {summary} failed")
    click.echo(f"{file}: {summary} passed (durable-rules)")


@rules.command("activate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--resolve-orphans",
    is_flag=True,
    help="Also resolve the open escalations of rules FILE removes (audited, with the reason).",
)
@click.option("--reason", metavar="TEXT", help="Why the orphans are resolved [default: which ruleset, by whom].")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation (asked only on a terminal).")
@pass_app
def rules_activate(app: App, file: str, resolve_orphans: bool, reason: str | None, yes: bool) -> None:
    """Make FILE the active ruleset (ops or manager), after the checks of `rules validate`, showing first its
    blast radius: what the next evaluation would open, resolve or no longer do, and which escalations it orphans.

    Example: pulsecheck --as olga rules activate rules.yaml --resolve-orphans"""
    from pulsecheck.errors import RefusedError
    from pulsecheck.workflow import blast
    from pulsecheck.workflow.evaluation import EvaluationSettings

    with every_problem(file), app.transaction() as session:
        parsed, kpis = blast.candidate(session, file, app.actor(session), app.settings.yaml_limits())
    radius = blast.preview(app.db, EvaluationSettings.from_settings(app.settings), parsed, app.now())
    _show_radius(app, file, radius, resolve_orphans)
    if not yes and _on_terminal() and not click.confirm(f"Activate {file}?", default=False):
        raise RefusedError(f"{file} not activated")
    with every_problem(file), app.transaction() as session:
        row, resolved = blast.activate(
            session, file, app.actor(session), app.now(), resolve_orphans, reason, app.settings.yaml_limits()
        )
        said = f"ruleset {row.name} active (sha256 {row.sha256[:12]}, by {row.activated_by})"
    _notes(file, parsed, kpis)
    click.echo(said)
    for orphan in resolved:
        echo_data(f"resolved escalation {orphan.id} ({orphan.account}, rule {orphan.rule}): its rule was removed")


def _on_terminal() -> bool:
    """Whether a person can answer a question (stdin is a terminal)."""
    import sys

    return sys.stdin.isatty()


def _show_radius(app: App, file: str, radius: Any, resolving: bool) -> None:
    """The blast radius as a diff: + what only FILE would do, - what only the active rules would, ! orphans."""
    against = f"the active ruleset {radius.against}" if radius.against else "no active ruleset"
    click.echo(f"blast radius of {file} against {against}, on the facts as of {_minute(app, radius.as_of)}:")
    for sign, items in (("+", radius.added), ("-", radius.dropped)):
        for p in items:
            echo_data(f"  {sign} {p.account:<12} {p.rule:<24} {p.action:<15} {p.detail}")
    fate = "resolved now (--resolve-orphans)" if resolving else "left open, nothing will resolve it (--resolve-orphans)"
    for o in radius.orphans:
        echo_data(
            f"  ! {o.account:<12} {o.rule:<24} {'orphaned':<15} escalation {o.id} ({o.status} since "
            f"{_minute(app, o.opened_at)}, owner {o.owner or '-'}): its rule is not in {file}; {fate}"
        )
    n = radius.counts()
    click.echo(
        f"  {n['escalations']} escalation(s) and {n['reviews']} review(s) to open, {n['resolved']} to resolve, "
        f"{n['other']} other action(s), {n['dropped']} no longer taken, {n['orphaned']} orphaned escalation(s), "
        f"{radius.unchanged} unchanged"
    )


def _minute(app: App, moment: datetime) -> str:
    """A time in the business time zone, to the minute."""
    return moment.astimezone(app.settings.tz).strftime("%Y-%m-%d %H:%M %Z")


@rules.command("show")
@json_option
@pass_app
def rules_show(app: App, as_json: bool) -> None:
    """The active ruleset."""
    from pulsecheck.workflow.rulesets import active_rules

    with app.reading() as connection:  # on Core: a read command imports no ORM (issue 17)
        row, parsed = active_rules(connection)
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
        parsed = load_rules_file(file, limits=app.settings.yaml_limits()) if file else active_rules(session)[1]
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

    parsed = load_rules_file(file, limits=app.settings.yaml_limits())
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
@click.option("--dry-run", is_flag=True, help="Print what would happen; write nothing (the real run's own plan).")
@click.option("--as-of", "as_of", metavar="DATE")
@click.option("--account")
@click.option("--workers", type=click.IntRange(min=1), help="Evaluate in shards by N worker processes (see `worker`).")
@click.option("--verbose", "-v", is_flag=True, help="List every action, not only the counts per rule and action.")
@json_option
@pass_app
def evaluate(
    app: App,
    dry_run: bool,
    as_of: str | None,
    account: str | None,
    workers: int | None,
    verbose: bool,
    as_json: bool,
) -> None:
    """Evaluate the active rules over the portfolio and apply their actions.

    Prints how many actions each rule led to; --verbose lists them.

    Example: pulsecheck evaluate --dry-run -v
    """
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
    if workers is not None:
        from pulsecheck.commands.worker import evaluate_in_shards

        return evaluate_in_shards(app, workers, when, dry_run or account_id is not None, as_json, terminal_progress)
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
    done = [*report.actions, *report.resolved]
    if verbose:
        for planned in done:
            click.echo(
                f"  {strip_controls(planned.account):<12} {planned.rule:<24} {planned.action:<15} "
                f"{strip_controls(planned.detail)}"
            )
        return
    for rule, counts in action_counts(done).items():
        said = ", ".join(f"{count} {action}" for action, count in counts.items())
        click.echo(f"  {strip_controls(rule):<28} {said}")
    if done:
        click.echo("  (--verbose lists every action)")


def action_counts(actions: list[Any]) -> dict[str, dict[str, int]]:
    """How many actions of each kind each rule led to, rules and kinds in the order they first came."""
    counts: dict[str, dict[str, int]] = {}
    for planned in actions:
        per_rule = counts.setdefault(planned.rule, {})
        per_rule[planned.action] = per_rule.get(planned.action, 0) + 1
    return counts


COMMANDS = [rules, evaluate]
