"""`pulsecheck serve` (the web app on uvicorn), and the web sign-in's `users password` and `users invite`."""

from __future__ import annotations

import click

from pulsecheck.commands.common import App, pass_app
from pulsecheck.commands.setup import users
from pulsecheck.errors import InputError


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (PostgreSQL only; SQLite serves with one).")
@pass_app
def serve(app: App, host: str, port: int, workers: int) -> None:
    """Serve the web app: sign in, the inbox, reviews, accounts, escalations, cycles and the portfolio."""
    import uvicorn

    url = app.settings.database_url
    if workers > 1 and not url.startswith(("postgresql", "postgres:")):
        raise InputError(f"--workers {workers}: SQLite serves with one worker (several need PostgreSQL)")
    app.db  # noqa: B018 - create or check the schema before the workers start
    public = app.settings.web.base_url or f"http://{host}:{port}"
    click.echo(f"pulsecheck web app on {public} (database {_redacted(url)}); Ctrl-C stops it", err=True)
    if workers == 1:
        from pulsecheck.web.app import create_app

        uvicorn.run(create_app(app.settings, app.db), host=host, port=port, log_level="info", proxy_headers=False)
    else:  # each worker builds its own app (and engine) from the same settings, read from the environment
        import os

        os.environ["PULSECHECK_DATABASE_URL"] = url
        config = click.get_current_context().find_root().params.get("config_file")
        if config:
            os.environ["PULSECHECK_CONFIG"] = config
        uvicorn.run("pulsecheck.web.factory:app_from_environment", factory=True, host=host, port=port,
                    workers=workers, log_level="info", proxy_headers=False)


def _redacted(url: str) -> str:
    from pulsecheck.storage.db import redact_url

    return redact_url(url)


@users.command("password")
@click.argument("name")
@pass_app
def users_password(app: App, name: str) -> None:
    """Set NAME's web sign-in password (your own, or anyone's for an admin); asked twice, never echoed."""
    from pulsecheck.workflow.signin import check_strength, set_password

    password = click.prompt("New password", hide_input=True, confirmation_prompt="Again")
    check_strength(password)
    with app.transaction() as session:
        set_password(session, app.actor(session), name, password, app.now())
    click.echo(f"password of {name} set")


@users.command("invite")
@click.argument("name")
@pass_app
def users_invite(app: App, name: str) -> None:
    """Print a one-time link with which NAME sets their web password (admin; valid for [web] invite_valid)."""
    from pulsecheck.timeutil import format_duration
    from pulsecheck.workflow.signin import create_invite

    valid = app.settings.web.invite_valid
    with app.transaction() as session:
        token = create_invite(session, app.actor(session), name, app.now(), valid)
    base = app.settings.web.base_url or "http://127.0.0.1:8000"
    click.echo(f"{base}/set-password/{token}")
    click.echo(f"(it works once, for {format_duration(valid)}; give it to {name} only)")


COMMANDS = [serve]
