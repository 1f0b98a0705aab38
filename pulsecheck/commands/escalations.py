"""escalations: list, acknowledge, resolve."""

from __future__ import annotations

import click

from pulsecheck.commands.common import App, emit_json, json_option, pass_app, table


@click.group()
def escalations() -> None:
    """Escalations opened by rules."""


@escalations.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only open and acknowledged ones.")
@click.option("--account")
@json_option
@pass_app
def escalations_list(app: App, open_only: bool, account: str | None, as_json: bool) -> None:
    """List escalations, most urgent first."""
    from pulsecheck.workflow.accounts import get_account
    from pulsecheck.workflow.escalations import escalation_dict, list_escalations

    with app.transaction() as session:
        account_id = get_account(session, account).id if account else None
        data = [escalation_dict(e, app.now()) for e in list_escalations(session, open_only, account_id)]
    if as_json:
        emit_json(data)
        return
    table(
        [
            (
                e["id"],
                e["account"],
                e["priority"],
                e["severity"],
                e["rule"],
                e["status"],
                e["owner"],
                e["level"],
                (e["due_at"] or "")[:10],
                e["age_days"],
                e["reason"],
            )
            for e in data
        ],
        ["id", "account", "prio", "severity", "rule", "status", "owner", "level", "due", "age", "reason"],
    )


@escalations.command("ack")
@click.argument("escalation_id", type=int)
@pass_app
def escalations_ack(app: App, escalation_id: int) -> None:
    """Acknowledge an escalation (its owner or a manager): the ladder stops."""
    from pulsecheck.workflow.escalations import acknowledge

    with app.transaction() as session:
        acknowledge(session, escalation_id, app.actor(session), app.now())
    click.echo(f"escalation {escalation_id} acknowledged")


@escalations.command("resolve")
@click.argument("escalation_id", type=int)
@pass_app
def escalations_resolve(app: App, escalation_id: int) -> None:
    """Resolve an escalation (its owner or a manager); the rule's cooldown starts."""
    from pulsecheck.workflow.escalations import resolve

    with app.transaction() as session:
        resolve(session, escalation_id, app.actor(session), app.now())
    click.echo(f"escalation {escalation_id} resolved")


COMMANDS = [escalations]
