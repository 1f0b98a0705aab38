"""escalations: list, acknowledge, resolve (one, several, or those a filter selects)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from pulsecheck import humanize as h
from pulsecheck.commands.common import (
    App,
    json_option,
    owner_options,
    paged,
    parse_day,
    pass_app,
    print_page,
    whose,
)
from pulsecheck.vocab import ESCALATION_SORTS, PRIORITIES, SEVERITIES

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from pulsecheck.storage.paging import PageRequest
    from pulsecheck.workflow.escalation_views import EscalationFilter

STATUSES = ("open", "acknowledged", "resolved")


@click.group()
def escalations() -> None:
    """Escalations opened by rules."""


def _filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--account, --rule, --owner/--mine: the filters a list and a bulk ack/resolve share."""
    command = owner_options("the owner")(command)
    command = click.option("--rule", metavar="R", help="Only escalations of rule R.")(command)
    return click.option("--account", help="Only escalations of this account.")(command)


def _chosen(
    app: App, db: Session | Connection, statuses: tuple[str, ...] | None, account: str | None, rule: str | None,
    owner: str | None, mine: bool, **more: Any,
) -> EscalationFilter:
    """The filter the options name, read on Core: the list's connection and a bulk ack's session both serve."""
    from pulsecheck.workflow.account_views import find_account
    from pulsecheck.workflow.escalation_views import EscalationFilter

    account_id = find_account(db, account).id if account else None
    return EscalationFilter(statuses, account_id, whose(app, db, owner, mine), rule, **more)


@escalations.command("list", epilog="Example: pulsecheck escalations list --open --mine --priority P1")
@click.option("--open", "open_only", is_flag=True, help="Only open and acknowledged ones.")
@click.option("--status", type=click.Choice(STATUSES), help="Only this status.")
@click.option("--priority", type=click.Choice(PRIORITIES), help="Only this priority.")
@click.option("--severity", type=click.Choice(SEVERITIES), help="Only this severity.")
@click.option("--due-before", metavar="DATE", help="Only those due before DATE (YYYY-MM-DD, business time zone).")
@_filter_options
@paged(ESCALATION_SORTS)
@json_option
@pass_app
def escalations_list(
    app: App, open_only: bool, status: str | None, priority: str | None, severity: str | None,
    due_before: str | None, account: str | None, rule: str | None, owner: str | None, mine: bool,
    page: PageRequest, as_json: bool,
) -> None:
    """List escalations, most urgent first."""
    from pulsecheck.timeutil import start_of_day
    from pulsecheck.workflow.escalation_views import escalation_page

    statuses = (status,) if status else ("open", "acknowledged") if open_only else None
    before = start_of_day(parse_day(due_before, "--due-before"), app.settings.tz) if due_before else None
    tz = app.settings.tz
    with app.reading() as connection:
        chosen = _chosen(app, connection, statuses, account, rule, owner, mine, priority=priority,
                         severity=severity, due_before=before)
        found = escalation_page(connection, page, chosen, app.now())
    print_page(
        found, as_json,
        lambda e: (e["id"], e["account"], e["priority"], e["severity"], e["rule"], e["status"], e["owner"],
                   e["level"], h.when(e["due_at"], tz), e["age_days"], e["reason"]),
        ["id", "account", "prio", "severity", "rule", "status", "owner", "level", "due", "age (d)", "reason"],
    )


def _bulk_command(name: str, verb: str, statuses: tuple[str, ...], doc: str, example: str) -> click.Command:
    @escalations.command(name, epilog=f"Example: {example}")
    @click.argument("escalation_ids", metavar="[ID]...", type=int, nargs=-1)
    @_filter_options
    @pass_app
    def command(
        app: App, escalation_ids: tuple[int, ...], account: str | None, rule: str | None, owner: str | None,
        mine: bool,
    ) -> None:
        from pulsecheck.workflow import escalations as service

        act = service.acknowledge if name == "ack" else service.resolve
        filtered = bool(account or rule or owner or mine)
        if escalation_ids and filtered:
            raise click.UsageError("give escalation IDs or a filter, not both")
        with app.transaction() as session:
            actor = app.actor(session)
            chosen = _chosen(app, session, statuses, account, rule, owner, mine) if filtered else None
            ids = service.matching(session, escalation_ids, chosen)
            for escalation_id in ids:  # one transaction: every one is done, or none (a refusal names it)
                act(session, escalation_id, actor, app.now())
        if not ids:
            click.echo(f"no escalation to {name}")
        for escalation_id in ids:
            click.echo(f"escalation {escalation_id} {verb}")

    command.help = doc  # the decorator read the (then empty) docstring already
    return command


_bulk_command(
    "ack", "acknowledged", ("open",),
    "Acknowledge escalations (their owner or a manager): the ladder stops. Several IDs, or a filter selecting "
    "open ones; all or none.",
    "pulsecheck escalations ack --mine --rule drop-with-complaints",
)
_bulk_command(
    "resolve", "resolved", ("open", "acknowledged"),
    "Resolve escalations (their owner or a manager); the rule's cooldown starts. Several IDs, or a filter "
    "selecting unresolved ones; all or none.",
    "pulsecheck escalations resolve 12 14",
)


COMMANDS = [escalations]
