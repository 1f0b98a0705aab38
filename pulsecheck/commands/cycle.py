"""cycle: the SOP's periodic portfolio review cycle, from start to a sealed, approved archive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pulsecheck import humanize as h
from pulsecheck.commands.common import (
    App,
    emit_json,
    json_option,
    owner_options,
    paged,
    parse_day,
    pass_app,
    print_page,
    show_markdown,
    whose,
)
from pulsecheck.errors import RefusedError
from pulsecheck.vocab import CYCLE_SORTS, CYCLE_STATES

if TYPE_CHECKING:
    from pulsecheck.storage.paging import PageRequest
    from pulsecheck.workflow.cycles.service import CycleSettings


@click.group()
def cycle() -> None:
    """Portfolio review cycles: scope, data, model, trends, classify, escalate, document; approve and archive."""


def _settings(app: App) -> CycleSettings:
    from pulsecheck.workflow.cycles.service import CycleSettings

    return CycleSettings.from_settings(app.settings)


@cycle.command("start")
@click.option("--period", required=True, metavar="P", help="The period reviewed: YYYY-MM (or YYYY-Qn).")
@click.option("--segment", "segments", multiple=True, metavar="S", help="A segment in scope (repeat; default all).")
@click.option("--owner", metavar="U", help="Who runs the cycle (default: you).")
@pass_app
def cycle_start(app: App, period: str, segments: tuple[str, ...], owner: str | None) -> None:
    """Start a cycle: snapshot the accounts in scope, the approved model, the active ruleset, the as-of date."""
    from pulsecheck.workflow.cycles import findings_of, start

    with app.transaction() as session:
        started = start(session, period, segments, owner, app.actor(session), app.now(), app.settings.tz)
        said = [
            f"cycle {started.id} started for {started.period} ({', '.join(started.segments) or 'all segments'}, "
            f"{len(started.account_ids)} accounts, owner {started.owner}, as of {started.as_of:%Y-%m-%d})"
        ]
        for finding in findings_of(session, started.id):
            carried = f" (carried from finding {finding.carried_from})" if finding.carried_from else ""
            said.append(f"  finding {finding.id} [{finding.kind}] {finding.detail}{carried}")
    click.echo("\n".join(said))


@cycle.command("list", epilog="Example: pulsecheck cycle list --state draft --mine")
@click.option("--state", type=click.Choice(CYCLE_STATES), help="Only cycles in this state.")
@owner_options("the cycle owner")
@paged(CYCLE_SORTS)
@json_option
@pass_app
def cycle_list(app: App, state: str | None, owner: str | None, mine: bool, page: PageRequest, as_json: bool) -> None:
    """List cycles, newest first."""
    from pulsecheck.workflow.cycles.reading import cycle_page

    with app.reading() as connection:
        found = cycle_page(connection, page, state, whose(app, connection, owner, mine))
    print_page(
        found, as_json,
        lambda c: (
            c["id"], c["period"], ", ".join(c["segments"]) or "all", c["state"], c["owner"], c["approver"],
            c["accounts"], f"{c['steps_done']}/7" + (f" (next {c['next_step']})" if c["next_step"] else ""),
            c["open_findings"], h.word(c["sealed"]),
        ),
        ["id", "period", "segments", "state", "owner", "approver", "accounts", "steps", "open findings", "sealed"],
    )


@cycle.command("show")
@click.argument("cycle_id", type=int)
@json_option
@pass_app
def cycle_show(app: App, cycle_id: int, as_json: bool) -> None:
    """Show a cycle: steps with who/when/result, findings, decisions, history."""
    from pulsecheck.workflow.cycles.reading import read_cycle, show_dict

    with app.reading() as connection:
        data = show_dict(connection, read_cycle(connection, cycle_id))
    if as_json:
        emit_json(data)
    else:
        from pulsecheck.reports.cycle import cycle_markdown  # with Jinja2: not for --json

        show_markdown(cycle_markdown(data, app.settings.tz))


@cycle.command("step")
@click.argument("cycle_id", type=int)
@click.argument("step")
@click.option("--note", metavar="T", help="What you checked or concluded.")
@click.option(
    "--evidence",
    multiple=True,
    metavar="X",
    help="A file (stored in the database, sealed by its sha256) or an http(s) link backing the step (repeat).",
)
@pass_app
def cycle_step(app: App, cycle_id: int, step: str, note: str | None, evidence: tuple[str, ...]) -> None:
    """Complete STEP (scope, data, model, trends, classify, escalate, document), in that order."""
    from pulsecheck.states.cycle import check_step_name
    from pulsecheck.workflow.attachments import CYCLE_STEP, links_of
    from pulsecheck.workflow.cycles.steps import run_step

    check_step_name(step)
    settings, limit = _settings(app), app.settings.attachments.max_size
    with app.transaction() as session:
        row = run_step(session, cycle_id, step, app.actor(session), app.now(), settings, note, evidence, limit)
        said = [f"cycle {cycle_id}: step {step} done by {row.done_by}"]
        said += [f"  {line}" for line in _headline(step, row.result)]
        said += [f"  evidence {k.filename}: stored, sha256 {k.sha256}" for k in links_of(session, CYCLE_STEP, row.id)]
    click.echo("\n".join(said))


def _headline(step: str, result: dict[str, Any]) -> list[str]:
    """One or two lines that say what a step found."""
    if step == "scope":
        return [f"{result['accounts']} accounts; without owner {result['without_owner']['count']}, "
                f"without snapshot {result['without_snapshot']['count']}"]
    if step == "data":
        return [f"deviations open {result['open'] or 0}, accepted {result['accepted'] or 0}"]
    if step == "model":
        return result["problems"] or ["the live model matches the approved version"]
    if step == "trends":
        return [f"{len(result['declining'])} declining, {len(result['sudden_changes'])} sudden change(s), "
                f"{len(result['low_streaks'])} repeated low, {len(result['possible_false_negatives'])} possible "
                f"false negative(s), {len(result['possible_false_positives'])} possible false positive(s)"]
    if step == "classify":
        return [f"{len(result['at_risk'])} at risk ({h.word(result['by_priority'])}), {len(result['watch'])} to watch"]
    if step == "escalate":
        return [f"{result['at_risk']} at-risk account(s) decided: {h.word(result['by_decision'])}"]
    return list(result.get("key_findings", []))


@cycle.command("decide")
@click.argument("cycle_id", type=int)
@click.argument("account")
@click.argument("decision", type=click.Choice(["monitor", "escalate"]))
@click.option("--owner", required=True, metavar="U", help="Who owns the follow-up.")
@click.option("--reason", metavar="T", help="Why (required for monitor).")
@pass_app
def cycle_decide(app: App, cycle_id: int, account: str, decision: str, owner: str, reason: str | None) -> None:
    """Decide what happens to an at-risk ACCOUNT: monitor it, or escalate it (opens an escalation)."""
    from pulsecheck.workflow.cycles import decide

    with app.transaction() as session:
        decide(session, cycle_id, account, decision, owner, reason, app.actor(session), app.now())
    click.echo(f"cycle {cycle_id}: {account} -> {decision} (owner {owner})")


@cycle.group("finding")
def cycle_finding() -> None:
    """Findings and non-conformances of a cycle."""


@cycle_finding.command("add")
@click.argument("cycle_id", type=int)
@click.option("--kind", required=True, metavar="K", help="data, scoring, process or other.")
@click.option("--detail", required=True, metavar="T", help="What was found.")
@click.option("--action", metavar="T", help="The corrective action (open findings with one carry over).")
@click.option("--owner", metavar="U", help="Who owns the corrective action.")
@click.option("--due", metavar="DATE", help="When the corrective action is due (YYYY-MM-DD).")
@pass_app
def cycle_finding_add(
    app: App, cycle_id: int, kind: str, detail: str, action: str | None, owner: str | None, due: str | None
) -> None:
    """Record a finding of cycle CYCLE_ID."""
    from pulsecheck.workflow.cycles import add_finding

    due_date = parse_day(due, "--due") if due else None
    with app.transaction() as session:
        found = add_finding(session, cycle_id, kind, detail, app.actor(session), app.now(), action, owner, due_date)
        finding_id = found.id
    click.echo(f"cycle {cycle_id}: finding {finding_id} added")


@cycle_finding.command("edit", epilog='Example: pulsecheck cycle finding edit 4 --detail "STARK feed stale"')
@click.argument("finding_id", type=int)
@click.option("--kind", metavar="K", help="data, scoring, process or other.")
@click.option("--detail", metavar="T", help="The new text of what was found.")
@click.option("--action", metavar="T", help='The corrective action ("" removes it, with its owner and due date).')
@click.option("--owner", metavar="U", help='Who owns the corrective action ("" removes the owner).')
@click.option("--due", metavar="DATE", help='When the corrective action is due, YYYY-MM-DD ("" removes it).')
@click.option("--if-version", "expected", metavar="V",
              help="The finding's version as you read it (`cycle show --json`): refused if it changed since.")
@pass_app
def cycle_finding_edit(
    app: App, finding_id: int, kind: str | None, detail: str | None, action: str | None, owner: str | None,
    due: str | None, expected: str | None,
) -> None:
    """Edit finding FINDING_ID of a draft cycle: only the fields given change; the audit row says old and new."""
    from pulsecheck.workflow.cycles import FindingEdit, edit_finding, finding_version

    clear_due = due is not None and not due.strip()
    due_date = parse_day(due, "--due") if due and due.strip() else None
    if action is not None and not action.strip() and owner is None and due is None:
        owner, clear_due = "", True  # removing the action removes what belongs to it
    change = FindingEdit(kind, detail, action, owner, due_date, clear_due)
    with app.transaction() as session:
        found, changed = edit_finding(session, finding_id, change, app.actor(session), app.now(), expected)
        version = finding_version(found)
    if changed:
        fields = ", ".join(name.replace("_", " ") for name in changed)
        click.echo(f"finding {finding_id} edited: {fields} (version {version})")
    else:
        click.echo(f"finding {finding_id}: nothing changed (version {version})")


@cycle_finding.command("close")
@click.argument("finding_id", type=int)
@click.option("--note", required=True, metavar="T", help="How it was resolved.")
@pass_app
def cycle_finding_close(app: App, finding_id: int, note: str) -> None:
    """Close finding FINDING_ID."""
    from pulsecheck.workflow.cycles import close_finding

    with app.transaction() as session:
        close_finding(session, finding_id, note, app.actor(session), app.now())
    click.echo(f"finding {finding_id} closed")


def _event_command(event: str, help_text: str) -> click.Command:
    @click.argument("cycle_id", type=int)
    @click.option("--comment", help="A comment kept in the audit trail.")
    @pass_app
    def command(app: App, cycle_id: int, comment: str | None) -> None:
        from pulsecheck.workflow.cycles.service import transition

        with app.transaction() as session:
            changed = transition(session, cycle_id, event, app.actor(session), app.now(), comment)
            sealed = f" (sealed, sha256 {changed.digest})" if event == "approve" and changed.digest else ""
            said = f"cycle {cycle_id}: {event} -> {changed.state}{sealed}"
        click.echo(said)

    command.__doc__ = help_text
    return cycle.command(event)(command)


for _event, _help in (
    ("submit", "Submit a draft whose seven steps are done (the owner)."),
    ("approve", "Approve a submitted cycle (a manager who is not the owner); seals it."),
    ("reject", "Send a submitted cycle back to draft (manager; --comment required)."),
    ("close", "Close an approved cycle (owner or manager)."),
):
    _event_command(_event, _help)


@cycle.command("verify")
@click.argument("cycle_id", type=int)
@json_option
@pass_app
def cycle_verify(app: App, cycle_id: int, as_json: bool) -> None:
    """Check the seal against the cycle's content and that the audit trail explains its state."""
    from pulsecheck.workflow.cycles import read_cycle, verify

    with app.reading() as connection:
        found = read_cycle(connection, cycle_id)
        problems = verify(connection, found)
        state, digest = found.state, found.digest
    if as_json:
        emit_json({"cycle": cycle_id, "state": state, "sealed": bool(digest), "ok": not problems, "problems": problems})
    else:
        for problem in problems:
            click.echo(f"FAIL {problem}")
        if not problems:
            seal = f"seal sha256 {digest} matches" if digest else f"not sealed yet ({state})"
            click.echo(f"ok: cycle {cycle_id}: {seal}, audit trail consistent")
    if problems:
        raise RefusedError(f"cycle {cycle_id} failed verification ({len(problems)} problem(s))")


@cycle.command("export")
@click.argument("cycle_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["md", "json", "html"]), default="md", show_default=True,
              help="Markdown, JSON or a standalone HTML page.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@pass_app
def cycle_export(app: App, cycle_id: int, fmt: str, output: str | None) -> None:
    """The cycle's archive: accounts, evidence, step results, findings, decisions, escalation and action log."""
    from pulsecheck.reports.cycle import render
    from pulsecheck.reports.files import write_atomic
    from pulsecheck.workflow.cycles import cycle_dict, read_cycle

    with app.reading() as connection:
        data = cycle_dict(connection, read_cycle(connection, cycle_id), full=True)
    text = render(data, fmt)
    if output:
        write_atomic(text, output)
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


COMMANDS = [cycle]
