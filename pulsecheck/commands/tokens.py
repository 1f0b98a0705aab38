"""tokens: personal access tokens for the JSON API (`Authorization: Bearer TOKEN`)."""

from __future__ import annotations

import click

from pulsecheck.commands.common import App, emit_json, json_option, pass_app, table


@click.group()
def tokens() -> None:
    """Personal access tokens for the JSON API at /api/v1 (read or write scope)."""


@tokens.command("create")
@click.argument("name")
@click.option("--scope", type=click.Choice(["read", "write"]), default="read", show_default=True,
              help="read: GET only; write: the actions too.")
@click.option("--expires", "days", type=int, metavar="DAYS", help="Expire after DAYS days (default: never).")
@click.option("--user", "user_name", metavar="U", help="Whose token (default: yours; an admin's for others).")
@pass_app
def tokens_create(app: App, name: str, scope: str, days: int | None, user_name: str | None) -> None:
    """Create a token and print it once (only its hash is stored).

    \b
    Example:
      pulsecheck tokens create laptop --scope write --expires 90
    """
    from pulsecheck.workflow.tokens import create_token

    with app.transaction() as session:
        token, secret = create_token(session, app.actor(session), name, scope, app.now(), days, user_name)
        said = f"token {token.id} ({token.scope}): {secret}\nkeep it now: it is not shown again"
    click.echo(said)


@tokens.command("list")
@click.option("--user", "user_name", metavar="U", help="Only this user's tokens (yours, or anyone's for an admin).")
@json_option
@pass_app
def tokens_list(app: App, user_name: str | None, as_json: bool) -> None:
    """List your tokens (an admin: everyone's), revoked and expired ones too."""
    from pulsecheck.workflow.token_views import token_dict, token_list

    with app.reading() as connection:
        now = app.now()
        data = [token_dict(t, now) for t in token_list(connection, app.identity(connection).acting, user_name)]
    if as_json:
        emit_json(data)
        return
    rows = [(t["id"], t["user"], t["name"], t["scope"], t["state"], t["created_at"], t["expires_at"] or "")
            for t in data]
    table(rows, ["id", "user", "name", "scope", "state", "created", "expires"])


@tokens.command("revoke")
@click.argument("token_id", type=int)
@pass_app
def tokens_revoke(app: App, token_id: int) -> None:
    """Revoke a token (your own, or anyone's for an admin): the API refuses it from now on."""
    from pulsecheck.workflow.tokens import revoke_token

    with app.transaction() as session:
        row = revoke_token(session, app.actor(session), token_id, app.now())
        said = f"token {row.id} revoked: {row.name}"
    click.echo(said)


COMMANDS = [tokens]
