"""Users and roles: add, import from CSV/JSON (all rows or none). Who is acting: `identity`; the list of users:
`user_views`."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError, NotFoundError, RefusedError
from pulsecheck.states import permissions
from pulsecheck.storage.models import User
from pulsecheck.vocab import ROLES
from pulsecheck.workflow.accounts import ImportResult
from pulsecheck.workflow.identity import user_by_login

if TYPE_CHECKING:  # the import machinery loads only for an import (see accounts.py)
    from pulsecheck.workflow.imports import FileFormat, Row

CHAT_HANDLE = re.compile(r"@?[A-Za-z0-9._-]{0,80}")
DIGESTS = ("daily", "off")
# The columns an import stores (column: attribute); other columns are ignored.
_IMPORTED = {"roles": "roles", "email": "email", "manager": "manager_name", "webhook": "webhook", "login": "login"}


def add_user(
    session: Session,
    name: str,
    roles: list[str],
    now: datetime,
    email: str | None = None,
    manager: str | None = None,
    webhook: str | None = None,
    login: str | None = None,
    actor: User | None = None,
    allowed_hosts: Collection[str] = (),
    chat: str | None = None,
    digest: str | None = None,
) -> User:
    """Create a user, or add roles and set the email/manager/webhook/login of an existing one. With an `actor`
    (every command passes one), what changes must be theirs to change: anything needs an admin, except a user
    setting their own email, or their own webhook to a host in `allowed_hosts`."""
    name = name.strip()
    if not name:
        raise InputError("user name is empty")
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise InputError(f"--role {','.join(bad)}: choose from {', '.join(ROLES)}")
    if email is not None and "@" not in email:
        raise InputError(f"--email {email!r}: not an email address")
    if chat is not None and not CHAT_HANDLE.fullmatch(chat):
        raise InputError(f"--chat {chat!r}: a chat handle is letters, digits, '.', '_' or '-' (empty: none)")
    if digest is not None and digest not in DIGESTS:
        raise InputError(f"--digest {digest!r}: choose from {', '.join(DIGESTS)}")
    if manager is not None and manager != name:
        get_user(session, manager, what="--manager")
    user = session.scalar(select(User).where(User.name == name))
    if user is None and not roles:
        raise InputError(f"--role: a new user needs at least one role ({', '.join(ROLES)})")
    if actor is not None:
        # a chat handle and a digest choice are the user's own contact preferences, as their email is
        own = email if email is not None else chat if chat is not None else digest
        _may_change(user, name, roles, own, manager, webhook, login, actor, allowed_hosts)
    if login is not None:
        _check_login_free(session, name, login)
    if user is None:
        user = User(name=name, roles="", created_at=now)
        session.add(user)
    user.roles = ",".join(sorted(set(user.role_set) | set(roles)))
    if email is not None:
        user.email = email
    if manager is not None:
        user.manager_name = manager
    if webhook is not None:
        user.webhook = webhook
    if login is not None:
        user.login = None if login == name else login
    if chat is not None:
        user.chat_handle = chat.removeprefix("@") or None
    if digest is not None:
        user.digest = None if digest == "off" else digest
    session.flush()
    return user


def _may_change(
    user: User | None,
    name: str,
    roles: list[str],
    email: str | None,
    manager: str | None,
    webhook: str | None,
    login: str | None,
    actor: User,
    allowed_hosts: Collection[str],
) -> None:
    """Refused unless the permission table lets `actor` make each change `users add` asks for."""
    who = permissions.actor(actor.name, actor.role_set, {"self": name})
    managed = (
        user is None
        or not set(roles) <= user.role_set
        or (manager is not None and manager != user.manager_name)
        or (login is not None and (None if login == name else login) != user.login)
    )
    asked = ["users.manage"] if managed else []
    if email is not None:
        asked.append("users.edit_own_email")
    if webhook is not None:
        asked.append("users.edit_own_webhook")
    for action in asked:
        reason = permissions.refusal(action, who)
        if reason:
            raise RefusedError(f"users add {name}: {reason}")
    # a user's own webhook receives their notifications: only to a host the settings trust, unless an admin sets it
    if webhook and not permissions.allowed("users.manage", who) and _host(webhook) not in allowed_hosts:
        shown = ", ".join(allowed_hosts) or "none"
        raise RefusedError(
            f"--webhook: host {_host(webhook) or '(none)'!r} is not in [notifications.webhook] allowed_hosts "
            f"({shown}); an admin sets other webhooks"
        )


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _check_login_free(session: Session, name: str, login: str) -> None:
    """A login maps to one user: neither another user's login nor the name of another user without one."""
    other = user_by_login(session, login)
    if other is not None and other.name != name:
        raise InputError(f"--login {login!r}: already the login of user {other.name!r}")


def require_admin(actor: User, what: str) -> None:
    """Refused unless `actor` may manage users (an admin)."""
    reason = permissions.refusal("users.manage", permissions.actor(actor.name, actor.role_set))
    if reason:
        raise RefusedError(f"{what}: {reason}")


def import_users(
    session: Session, path: str | Path, now: datetime, fmt: FileFormat | None = None, actor: User | None = None
) -> ImportResult:
    """Create or update users from a CSV or JSON file; any bad row aborts the whole import. With an `actor`, only
    an admin imports.

    The roles of a row replace the stored ones (the file describes the team); a manager may be a stored user
    or one defined anywhere in the same file. Other columns left out of the file keep their stored values.
    """
    if actor is not None:
        require_admin(actor, "users import")
    from pulsecheck.workflow.imports import FileFormat, read_rows

    rows = read_rows(path, required_columns=("name", "roles"), fmt=fmt or FileFormat())
    parsed = [(row, _parse_user_row(row)) for row in rows]
    stored = {u.name: u for u in session.scalars(select(User))}
    _check_unique(parsed, "name", {})
    _check_managers(parsed, stored)
    relogged = {values["name"] for _, values in parsed if "login" in values}  # logins that the file sets anew
    _check_unique(parsed, "login", {u.login: name for name, u in stored.items() if u.login and name not in relogged})
    for name in relogged & stored.keys():
        stored[name].login = None  # logins may move between users: free them all before any is taken
    session.flush()
    created = 0
    for _, values in parsed:
        user = stored.get(values["name"])
        if user is None:
            user = User(name=values["name"], roles="", created_at=now)
            session.add(user)
            created += 1
        # A column the file has sets the value (an empty cell clears it); one it leaves out keeps the stored one.
        for key, attribute in _IMPORTED.items():
            if key in values:
                setattr(user, attribute, values[key])
    session.flush()
    return ImportResult(created=created, updated=len(parsed) - created)


def _check_unique(parsed: list[tuple[Row, dict[str, Any]]], column: str, taken: dict[str, str]) -> None:
    """No two rows give the same value of `column`, nor one that `taken` maps to another user."""
    first_row: dict[str, int] = {}
    for row, values in parsed:
        value = values.get(column)
        if value is None:
            continue
        if value in first_row:
            raise InputError(f"{row.where(column)}: {value!r} already given in row {first_row[value]}")
        if value in taken:
            raise InputError(f"{row.where(column)}: {value!r} is already the {column} of user {taken[value]!r}")
        first_row[value] = row.number


def _check_managers(parsed: list[tuple[Row, dict[str, Any]]], stored: dict[str, User]) -> None:
    """Each manager is a stored user or one the file defines (in any row)."""
    known = [*(values["name"] for _, values in parsed), *stored]
    for row, values in parsed:
        manager = values.get("manager")
        if manager is not None and manager not in known:
            from pulsecheck.yamlfile import suggest  # with YAML: only when there is something to suggest

            raise InputError(f"{row.where('manager')}: unknown user {manager!r}{suggest(manager, known)}")


def _parse_user_row(row: Row) -> dict[str, Any]:
    """The stored values of one import row: only the keys present in the row, each checked."""
    values: dict[str, Any] = {"name": row.text("name", required=True), "roles": _row_roles(row)}
    email = row.text("email")
    if email is not None and "@" not in email:
        raise InputError(f"{row.where('email')}: {email!r} is not an email address")
    for key in ("manager", "webhook", "login"):
        if key in row.values:
            values[key] = row.text(key)
    if "email" in row.values:
        values["email"] = email
    return values


def _row_roles(row: Row) -> str:
    """The roles cell: `reviewer;manager` (commas work too) in CSV, a list or such a string in JSON."""
    raw = row.values.get("roles")
    if isinstance(raw, list):
        if not all(isinstance(item, str) for item in raw):
            raise InputError(f"{row.where('roles')}: expected a list of role names")
        names = [item.strip() for item in raw]
    else:
        names = re.split(r"[;,]", row.text("roles", required=True) or "")
    roles = sorted({name.strip() for name in names if name.strip()})
    if not roles:
        raise InputError(f"{row.where('roles')}: at least one role is required ({', '.join(ROLES)})")
    for role in roles:
        if role not in ROLES:
            from pulsecheck.yamlfile import suggest

            raise InputError(
                f"{row.where('roles')}: unknown role {role!r}{suggest(role, ROLES)}; choose from {', '.join(ROLES)}"
            )
    return ",".join(roles)


_BY_NAME = select(User).where(User.name == bindparam("name"))  # built once: every command loads its actor


def get_user(session: Session, name: str, what: str = "user") -> User:
    """The user called `name`, or an input error naming it."""
    user = session.scalar(_BY_NAME, {"name": name})
    if user is None:
        raise NotFoundError(f"{what}: unknown user {name!r}")
    return user


def bootstrap_admin(session: Session, name: str, login: str, now: datetime) -> User | None:
    """The first admin `name` (authenticating as `login`) when there are no users yet; None when there are."""
    if session.scalar(select(User.id).limit(1)) is not None:
        return None
    return add_user(session, name, ["admin"], now, login=login)
