"""worker: evaluation capacity from any host sharing the database; and the local workers of `evaluate --workers`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from pulsecheck.commands.common import App, emit_json, pass_app
from pulsecheck.errors import InputError


@click.command()
@click.option("--once", is_flag=True, help="Work on the shards free now, then exit (default: wait for more runs).")
@click.option("--run", "run_id", type=int, hidden=True)  # the local workers of `evaluate --workers`
@click.option("--parent", type=int, hidden=True)  # ...which die with it
@pass_app
def worker(app: App, once: bool, run_id: int | None, parent: int | None) -> None:
    """Claim shards of sharded evaluation runs (`evaluate --workers N`), evaluate and apply them."""
    from pulsecheck.workflow.evaluation import EvaluationSettings
    from pulsecheck.workflow.workers import work

    if parent is not None:
        from pulsecheck.rules.durable import die_with_parent

        die_with_parent(parent)
    with app.transaction() as session:
        app.require(session, "evaluate")
    quiet = parent is not None
    done = work(
        app.db,
        EvaluationSettings.from_settings(app.settings),
        run_id,
        once,
        (lambda line: None) if quiet else (lambda line: click.echo(line)),
    )
    if not quiet:
        click.echo(f"{done} shard(s) done")


def local_workers() -> Callable[[int], subprocess.Popen[bytes]]:
    """How `evaluate --workers` starts a worker of its run: this CLI again with the same global options, dying
    with this process."""
    root = click.get_current_context().find_root().params
    argv = [sys.executable, "-c", "from pulsecheck.cli import main; main()", "worker"]
    for option, name in (("--db", "db_url"), ("--config", "config_file"), ("--as", "as_user")):
        if root.get(name):
            argv += [option, str(root[name])]
    parent = os.getpid()

    def spawn(run_id: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*argv, "--run", str(run_id), "--parent", str(parent)], stdout=subprocess.DEVNULL)

    return spawn


def evaluate_in_shards(
    app: App, workers: int, when: datetime, partial: bool, as_json: bool, progress: Callable[[], Any]
) -> None:
    """`evaluate --workers N`: the whole portfolio in shards; prints the counts after the run is done."""
    from pulsecheck.workflow.workers import evaluate_sharded

    if partial:
        raise InputError("--workers: evaluates the whole portfolio and writes; not with --dry-run or --account")
    with progress() as bar:
        report = evaluate_sharded(app.db, when, app.now(), workers, local_workers(), bar)
    data = {
        "as_of": when.isoformat(), "run": report.run_id, "accounts": report.accounts, "firings": report.firings,
        "actions": report.actions, "shards": report.shards, "workers": report.workers,
        "recovered": report.recovered,
    }  # fmt: skip
    if as_json:
        emit_json(data)
        return
    for line in report.recovered:
        click.echo(f"{line}: marked failed", err=True)
    click.echo(
        f"{report.accounts} accounts, {report.firings} firing(s), applied {report.actions} action(s) "
        f"in {report.shards} shards by {workers} worker(s) (run {report.run_id})"
    )


COMMANDS = [worker]
