"""scheduler: run the jobs (daemon or one pass) and list them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pulsecheck import humanize as h
from pulsecheck.commands.common import App, emit_json, json_option, paged, pass_app, print_page
from pulsecheck.vocab import JOB_SORTS

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from pulsecheck.scheduling.jobs import Runtime
    from pulsecheck.scheduling.runner import Pass
    from pulsecheck.storage.paging import PageRequest


@click.group()
def scheduler() -> None:
    """Due dates, reminders, the escalation ladder, cadence reviews, periodic evaluation and dispatch."""


@scheduler.command("run")
@click.option("--once", is_flag=True, help="Run every job due now (missed ones once each) and exit: for cron.")
@json_option
@pass_app
def scheduler_run(app: App, once: bool, as_json: bool) -> None:
    """Run the scheduler: a daemon until SIGTERM/SIGINT, or one pass with --once.

    The clock is the wall clock, or PULSECHECK_NOW. Only one scheduler runs jobs at a time per database;
    a second one waits as standby and takes over when the first stops or dies. A job killed mid-way runs
    again at the next start; evaluation runs left `running` by a dead process are marked failed.
    """
    from pulsecheck.scheduling.runner import run_once, runtime

    with app.transaction() as session:
        app.require(session, "scheduler.run")
    rt = runtime(app.db, app.settings)
    if note := app.settings.log_channel_note():
        click.echo(note, err=True)
    if not once:
        _daemon(rt)
        return
    done = run_once(rt)  # every job has committed its work by the time it returns: only then say what happened
    if as_json:
        emit_json(_pass_json(done))
    else:
        _echo_pass(done, app.settings.tz)


def _pass_json(done: Pass) -> dict[str, Any]:
    reconciled = done.reconciled
    return {
        "now": done.now.isoformat(),
        "recovered": done.recovered,
        "reconciled": {
            "added": reconciled.added,
            "replaced": reconciled.replaced,
            "removed": reconciled.removed,
            "kept": reconciled.kept,
        },
        "runs": [
            {
                "job": r.id,
                "scheduled_for": r.scheduled_for.isoformat(),
                "missed": r.missed,
                "ok": r.ok,
                "result": r.result,
            }
            for r in done.runs
        ],
    }


def _echo_pass(done: Pass, tz: ZoneInfo) -> None:
    for line in done.recovered:
        click.echo(f"{line}: marked failed")
    report = done.reconciled
    click.echo(
        f"reconciled: {len(report.added)} added, {len(report.replaced)} repaired, {len(report.removed)} removed, "
        f"{report.kept} kept"
    )
    click.echo(f"ran {len(done.runs)} job(s) due by {done.now.astimezone(tz):%Y-%m-%d %H:%M %Z}")
    for r in done.runs:
        missed = f" (+{r.missed} missed, coalesced)" if r.missed else ""
        click.echo(f"  {'ok ' if r.ok else 'ERR'} {r.id:<28} {r.result}{missed}")


def _daemon(rt: Runtime) -> None:
    import signal
    import threading

    from pulsecheck.scheduling.runner import run_forever

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        click.echo(f"received {signal.Signals(signum).name}", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run_forever(rt, stop, lambda line: click.echo(line, err=True))


@scheduler.command("jobs", epilog="Example: pulsecheck scheduler jobs --kind review-due --limit 20")
@click.option("--kind", metavar="K", help="Only jobs of this kind (the part before ':', e.g. review-due, cadence).")
@paged(JOB_SORTS)
@json_option
@pass_app
def scheduler_jobs(app: App, kind: str | None, page: PageRequest, as_json: bool) -> None:
    """List the scheduled jobs with their next run time (business time zone)."""
    from pulsecheck.scheduling.listing import job_page

    tz = app.settings.tz
    prefix = None if kind is None else kind if kind in ("evaluate", "dispatch-notifications") else f"{kind}:"
    with app.reading() as connection:
        found = job_page(connection, page, prefix)
    if as_json:
        emit_json(found.map(
            lambda r: {
                "id": r.id, "name": r.name, "trigger": r.trigger,
                "next_run_time": r.next_run_time.isoformat() if r.next_run_time else None,
            }
        ).to_dict())
        return
    print_page(
        found, False,
        lambda r: (r.id, h.when(r.next_run_time, tz) if r.next_run_time else "paused", r.trigger),
        ["job", "next run", "trigger"],
    )


COMMANDS = [scheduler]
