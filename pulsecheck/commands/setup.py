"""init, db, users, accounts."""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pulsecheck import humanize as h
from pulsecheck.commands.common import (
    App,
    echo_data,
    emit_json,
    every_problem,
    file_format,
    import_options,
    json_option,
    owner_options,
    paged,
    parse_day,
    pass_app,
    print_page,
    whose,
)
from pulsecheck.vocab import ACCOUNT_SORTS, ROLES, USER_SORTS

if TYPE_CHECKING:
    from pulsecheck.storage.paging import PageRequest


@click.command()
@click.option("--sample", type=click.Path(file_okay=False), help="Also copy the sample files into DIR.")
@click.option(
    "--admin", metavar="NAME", help="The first admin, when there are no users yet [default: the current login]."
)
@pass_app
def init(app: App, sample: str | None, admin: str | None) -> None:
    """Create or upgrade the database schema; the first run makes the current login (as --admin NAME) an admin."""
    from pulsecheck.storage.db import Database
    from pulsecheck.storage.migrate import upgrade
    from pulsecheck.storage.roles import ensure_roles

    database = Database(app.settings.database_url)
    upgrade(database.engine)
    roles_note = ensure_roles(database.engine)
    database.dispose()
    ready = f"database ready: {database.engine.url.render_as_string(hide_password=True)}"
    said = [ready, *([roles_note] if roles_note else [])]
    first = _bootstrap(app, admin)
    if first:
        said.append(first)
    click.echo("\n".join(said))
    if sample:
        from pulsecheck.demo import copy_samples

        for path in copy_samples(Path(sample)):
            click.echo(f"wrote {path}")


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Apply pending migrations."""
    from pulsecheck.storage.db import Database, schema_revision
    from pulsecheck.storage.migrate import upgrade
    from pulsecheck.storage.roles import ensure_roles

    database = Database(app.settings.database_url)
    before = schema_revision(database.engine)
    upgrade(database.engine)
    roles_note = ensure_roles(database.engine)
    click.echo(f"schema {before or '(empty)'} -> {schema_revision(database.engine)}")
    if roles_note:
        click.echo(roles_note)


def _bootstrap(app: App, admin: str | None) -> str | None:
    """Make the first admin (`admin`, else the name of the current login) when there are no users; what to
    print, or None when users exist already."""
    from pulsecheck.app import authenticated_login
    from pulsecheck.errors import RefusedError
    from pulsecheck.storage import chain
    from pulsecheck.workflow.users import bootstrap_admin

    with app.db.transaction() as session:
        login = authenticated_login(session)
        session.info[chain.ACTOR] = login
        if not login:
            raise RefusedError("cannot tell who you are (no login for this process's user id)")
        user = bootstrap_admin(session, (admin or login).strip(), login, app.now())
        if user is None:
            if admin:
                raise RefusedError(f"--admin {admin}: users exist already; an admin adds admins with `users add`")
            return None
        return f"user {user.name}: admin (login {user.login or user.name})"


@click.group()
def users() -> None:
    """People and their roles."""


@users.command("add")
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(ROLES),
    help="Repeat for several roles (a new user needs one).",
)
@click.option("--email", help="The user's email address (for email notifications).")
@click.option("--manager", help="This user's manager (approves their reviews by default).")
@click.option("--webhook", help="A webhook URL for this user's notifications.")
@click.option("--login", metavar="L", help="The OS login or PostgreSQL role the user signs in as [default: NAME].")
@click.option("--db-role", is_flag=True, help="Also create the PostgreSQL login role (needs CREATEROLE).")
@click.option("--chat", metavar="HANDLE", help="Chat handle: webhook messages mention <@HANDLE> ('' removes it).")
@click.option("--digest", type=click.Choice(["daily", "off"]), help="daily: non-critical messages in one digest a day.")
@pass_app
def users_add(
    app: App,
    name: str,
    roles: tuple[str, ...],
    email: str | None,
    manager: str | None,
    webhook: str | None,
    login: str | None,
    db_role: bool,
    chat: str | None = None,
    digest: str | None = None,
) -> None:
    """Add a user (or add roles, set the email, manager, webhook or login of one): an admin's change, except
    your own email, and your own webhook to a host in [notifications.webhook] allowed_hosts."""
    from pulsecheck.storage.roles import create_login_role
    from pulsecheck.workflow.users import add_user, require_admin

    webhook_options = app.settings.notifications.webhook
    hosts = webhook_options.allowed_hosts if webhook_options else []
    with app.transaction() as session:
        actor = app.actor(session)
        user = add_user(
            session, name, list(roles), app.now(), email=email, manager=manager, webhook=webhook, login=login,
            actor=actor, allowed_hosts=hosts, chat=chat, digest=digest,
        )
        said = f"user {user.name}: {user.roles}"
        if db_role:
            require_admin(actor, "--db-role")
            create_login_role(session, user.login or user.name)
            said += f" (database role {user.login or user.name} created)"
    click.echo(said)


@users.command("set")
@click.argument("name")
@click.option("--email", help="The address email notifications go to.")
@click.option("--webhook", help="A webhook URL for this user's notifications.")
@click.option("--chat", metavar="HANDLE", help="Chat handle: webhook messages mention <@HANDLE> ('' removes it).")
@click.option("--digest", type=click.Choice(["daily", "off"]), help="daily: non-critical messages in one digest a day.")
@pass_app
def users_set(
    app: App, name: str, email: str | None, webhook: str | None, chat: str | None, digest: str | None
) -> None:
    """Change an existing user's contact details, e.g. `pulsecheck users set bob --chat U024BE7LH --digest daily`."""
    from pulsecheck.workflow.users import add_user, get_user

    webhook_options = app.settings.notifications.webhook
    hosts = webhook_options.allowed_hosts if webhook_options else []
    with app.transaction() as session:
        get_user(session, name, what="users set")
        user = add_user(
            session, name, [], app.now(), email=email, webhook=webhook, actor=app.actor(session),
            allowed_hosts=hosts, chat=chat, digest=digest,
        )  # fmt: skip
        said = f"user {user.name}: chat {user.chat_handle or '-'}, digest {user.digest or 'off'}"
    click.echo(said)


@users.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@import_options
@pass_app
def users_import(app: App, file: str, delimiter: str | None, decimal_comma: bool) -> None:
    """Import users from CSV or JSON (all rows or none; re-import updates by name).

    Columns: name, roles (`reviewer;manager` in CSV, a list in JSON), email, manager (a stored user or one
    anywhere in the file), webhook, login (the OS login or database role the user signs in as).

    Formats: CSV with a header row (UTF-8, a BOM and CRLF are fine; --delimiter, --decimal-comma) or JSON (a list
    of objects with the same keys).
    """
    from pulsecheck.workflow.users import import_users

    with every_problem(file), app.transaction() as session:
        result = import_users(
            session, file, app.now(), file_format(app, delimiter, decimal_comma), actor=app.actor(session)
        )
    click.echo(f"{file}: {result.created} created, {result.updated} updated")


@users.command("list", epilog="Example: pulsecheck users list --role manager")
@click.option("--role", type=click.Choice(ROLES), help="Only users holding this role.")
@click.option("--manager", metavar="M", help="Only users reporting to M.")
@click.option("--mine", is_flag=True, help="Only the users reporting to me.")
@paged(USER_SORTS)
@json_option
@pass_app
def users_list(
    app: App, role: str | None, manager: str | None, mine: bool, page: PageRequest, as_json: bool
) -> None:
    """List users."""
    from pulsecheck.workflow.user_views import user_page

    with app.reading() as connection:
        found = user_page(connection, page, role, whose(app, connection, manager, mine, "--manager"))
    print_page(
        found, as_json,
        lambda u: (u["name"], ", ".join(u["roles"]), u["email"], u["manager"]),
        ["name", "roles", "email", "manager"],
    )


@click.group()
def accounts() -> None:
    """The customer portfolio."""


@accounts.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@import_options
@pass_app
def accounts_import(app: App, file: str, delimiter: str | None, decimal_comma: bool) -> None:
    """Import accounts from CSV or JSON (all rows or none; re-import updates by external_id).

    Columns: external_id, name, segment, tier, arr (a number), owner and manager (user names), renewal_date and
    contract_start (YYYY-MM-DD), stage; only external_id and name are required.

    Formats: CSV with a header row (UTF-8, a BOM and CRLF are fine; --delimiter, --decimal-comma) or JSON (a list
    of objects with the same keys).
    """
    from pulsecheck.workflow.accounts import import_accounts

    with every_problem(file), app.transaction() as session:
        result = import_accounts(session, file, file_format(app, delimiter, decimal_comma))
    click.echo(f"{file}: {result.created} created, {result.updated} updated")


@accounts.command("list", epilog="Example: pulsecheck accounts list --bucket unhealthy --mine --sort arr")
@click.option("--segment", help="Only accounts of this segment.")
@click.option("--bucket", help="Only accounts whose latest score is in this bucket.")
@click.option("--tier", help="Only accounts of this tier.")
@click.option("--renewal-before", metavar="DATE", help="Only accounts renewing before DATE (YYYY-MM-DD).")
@owner_options("the owner")
@paged(ACCOUNT_SORTS)
@json_option
@pass_app
def accounts_list(
    app: App, segment: str | None, bucket: str | None, tier: str | None, renewal_before: str | None,
    owner: str | None, mine: bool, page: PageRequest, as_json: bool,
) -> None:
    """List accounts with their latest score and bucket."""
    from pulsecheck.workflow.account_views import account_page

    before = parse_day(renewal_before, "--renewal-before") if renewal_before else None
    with app.reading() as connection:
        found = account_page(
            connection, page, segment=segment, bucket=bucket, owner=whose(app, connection, owner, mine), tier=tier,
            renewal_before=before,
        )
    print_page(
        found, as_json,
        lambda a: (a["id"], a["name"], a["segment"], a["tier"], h.money(a["arr"]), a["owner"],
                   h.day(a["renewal_date"]), h.score(a["score"]), a["bucket"]),
        ["id", "name", "segment", "tier", "arr", "owner", "renewal", "score", "bucket"],
    )


@accounts.command("reassign", epilog="Example: pulsecheck accounts reassign --from bob --to carol --reason 'bob left'")
@click.option("--from", "leaving", required=True, metavar="U", help="The owner whose book moves (e.g. who leaves).")
@click.option("--to", "taking", required=True, metavar="V", help="Who takes it over.")
@click.option("--reason", default="", metavar="T", help="Why, kept in each review's audit trail.")
@pass_app
def accounts_reassign(app: App, leaving: str, taking: str, reason: str) -> None:
    """Move U's book to V in one transaction: accounts U owns, draft reviews U reviews, open reviews U approves,
    unresolved escalations U owns (U's manager or an admin; audited)."""
    from pulsecheck.workflow.accounts import reassign_book

    with app.transaction() as session:
        done = reassign_book(session, leaving, taking, app.actor(session), app.now(), reason)
    click.echo(
        f"{leaving} -> {taking}: {h.count(done.accounts, 'account')}, {h.count(done.reviews, 'draft review')}, "
        f"{h.count(done.approvals, 'review')} to approve, {h.count(done.escalations, 'escalation')}"
    )
    if done.left:
        ids = ", ".join(str(i) for i in done.left)
        click.echo(f"left with {leaving} as approver: review {ids} ({taking} reviews it or is no manager); "
                   "use `review reassign`")


@accounts.command("show")
@click.argument("account")
@click.option("--history", "limit", default=12, show_default=True, help="How many snapshots to show.")
@json_option
@pass_app
def accounts_show(app: App, account: str, limit: int, as_json: bool) -> None:
    """Show one account: details, score history with a sparkline, and why the score moved."""
    from pulsecheck.workflow.account_views import account_view

    with app.reading() as connection:
        data = account_view(connection, account, app.now(), limit)
    if as_json:
        emit_json(data)
        return
    tz = app.settings.tz
    trend = data.pop("trend")
    shown = data | {"arr": h.money(data["arr"]), "renewal_date": h.day(data["renewal_date"]),
                    "contract_start": h.day(data["contract_start"])}
    for key, value in shown.items():
        echo_data(f"{key:>15}: {h.word(value)}")
    if not trend["history"]:
        click.echo("\nno score snapshots yet (run `pulsecheck score`)")
        return
    click.echo("\n" + trend_line(trend, tz))
    for row in trend["history"]:
        click.echo(f"  {h.day(row['as_of'], tz)}  {h.score(row['score']):>6}  {h.word(row['bucket'])}")
    if trend["contribution_changes"]:
        click.echo("since the previous snapshot:")
        for kpi, delta in trend["contribution_changes"]:
            click.echo(f"  {kpi:<20} {h.change(delta)} points")


def trend_line(trend: dict[str, Any], tz: tzinfo) -> str:
    """`score 59.99 (neutral)  ▇▆  -4.81 since 2026-10-31 (64.8); 30 days: -`: the latest score and what it
    really did, since the previous snapshot and over 30 days."""
    latest = trend["history"][-1]
    said = f"score {h.score(latest['score'])} ({h.word(latest['bucket'])})"
    said += " provisional" if latest["provisional"] else ""
    said += f"  {trend['sparkline']}"
    previous = trend.get("previous")
    if previous:
        since = h.day(previous["as_of"], tz)
        said += f"  {h.change(previous['change'])} since {since} ({h.score(previous['score'])})"
    change = trend["change_30d"]
    over = "-" if change is None else f"{trend['direction']} {h.change(change)}"
    said += f"; 30 days: {over}"
    return said


COMMANDS = [init, db, users, accounts]
