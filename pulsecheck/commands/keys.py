"""keys: the SSH keys users sign their sign-offs with."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from pulsecheck import humanize as h
from pulsecheck.commands.common import App, json_option, paged, pass_app, print_page, whose
from pulsecheck.vocab import KEY_SORTS

if TYPE_CHECKING:
    from pulsecheck.storage.paging import PageRequest


@click.group()
def keys() -> None:
    """Personal SSH signing keys: sign-offs are signed with them as git signs commits."""


@keys.command("add")
@click.argument("pubkey_file", type=click.Path(dir_okay=False))
@click.option("--user", "user_name", metavar="U", help="Whose key (default: yours; an admin's for others).")
@pass_app
def keys_add(app: App, pubkey_file: str, user_name: str | None) -> None:
    """Register an OpenSSH public key (`~/.ssh/id_ed25519.pub`, or one in ssh-agent or on a hardware key).

    \b
    Example:
      pulsecheck keys add ~/.ssh/id_ed25519.pub
    """
    from pulsecheck.workflow.keys import add_key

    with app.transaction() as session:
        actor = app.actor(session)
        key = add_key(session, actor, user_name or actor.name, Path(pubkey_file), app.now())
        said = f"key {key.id} of {user_name or actor.name}: {key.fingerprint}"
    click.echo(said)


@keys.command("new")
@pass_app
def keys_new(app: App) -> None:
    """Create an Ed25519 key in your config directory (mode 0600) and register it for you.

    Sign-offs are then signed with it unless `[signing] key` names another.
    """
    from pulsecheck.workflow.keys import add_key, create_key_file, default_key_path

    path = default_key_path()
    with app.transaction() as session:
        actor = app.actor(session)  # before the file exists: an unknown user leaves no key behind
        public = create_key_file(path, f"pulsecheck:{actor.name}")
        try:
            key = add_key(session, actor, actor.name, public, app.now())
            said = f"key {key.id} of {actor.name}: {key.fingerprint}\nprivate key {path} (keep it; mode 0600)"
        except BaseException:
            path.unlink(missing_ok=True)
            public.unlink(missing_ok=True)
            raise
    click.echo(said)


@keys.command("list", epilog="Example: pulsecheck keys list --mine")
@click.option("--user", "user_name", metavar="U", help="Only this user's keys.")
@click.option("--mine", is_flag=True, help="Only my keys.")
@paged(KEY_SORTS)
@json_option
@pass_app
def keys_list(app: App, user_name: str | None, mine: bool, page: PageRequest, as_json: bool) -> None:
    """List registered keys (revoked ones too: they verify what they signed before)."""
    from pulsecheck.workflow.key_views import key_page

    tz = app.settings.tz
    with app.reading() as connection:
        found = key_page(connection, page, whose(app, connection, user_name, mine, "--user"))
    print_page(
        found, as_json,
        lambda k: (k["id"], k["user"], k["fingerprint"], k["type"], h.when(k["added_at"], tz),
                   h.when(k["revoked_at"], tz)),
        ["id", "user", "fingerprint", "type", "added", "revoked"],
    )


@keys.command("revoke")
@click.argument("key")
@pass_app
def keys_revoke(app: App, key: str) -> None:
    """Revoke a key by id or fingerprint: it signs nothing more, and still verifies what it signed before."""
    from pulsecheck.workflow.keys import revoke_key

    with app.transaction() as session:
        row = revoke_key(session, app.actor(session), key, app.now())
        said = f"key {row.id} revoked: {row.fingerprint}"
    click.echo(said)


COMMANDS = [keys]
