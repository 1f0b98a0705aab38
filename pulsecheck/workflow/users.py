"""Users and roles: add, import from CSV/JSON (all rows or none), list; resolving the acting user."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError, NotFoundError, RefusedError
from pulsecheck.storage.models import User
from pulsecheck.vocab import ROLES
from pulsecheck.workflow.accounts import ImportResult
from pulsecheck.workflow.imports import Row, read_rows
from pulsecheck.yamlfile import suggest

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
) -> User:
    """Create a user, or update the roles/email/manager of an existing one."""
    name = name.strip()
    if not name:
        raise InputError("user name is empty")
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise InputError(f"--role {','.join(bad) or '(none)'}: choose from {', '.join(ROLES)}")
    if email is not None and "@" not in email:
        raise InputError(f"--email {email!r}: not an email address")
    if manager is not None and manager != name:
        get_user(session, manager, what="--manager")
    user = session.scalar(select(User).where(User.name == name))
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
    session.flush()
    return user


def import_users(session: Session, path: str | Path, now: datetime) -> ImportResult:
    """Create or update users from a CSV or JSON file; any bad row aborts the whole import.

    The roles of a row replace the stored ones (the file describes the team); a manager may be a stored user
    or one defined anywhere in the same file. Other columns left out of the file keep their stored values.
    """
    rows = read_rows(path, required_columns=("name", "roles"))
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
            raise InputError(
                f"{row.where('roles')}: unknown role {role!r}{suggest(role, ROLES)}; choose from {', '.join(ROLES)}"
            )
    return ",".join(roles)


def list_users(session: Session) -> list[User]:
    """All users by name."""
    return list(session.scalars(select(User).order_by(User.name)))


def get_user(session: Session, name: str, what: str = "user") -> User:
    """The user called `name`, or an input error naming it."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFoundError(f"{what}: unknown user {name!r}")
    return user


def acting_user(session: Session, name: str) -> User:
    """The user running the command; unknown users are refused."""
    if not name:
        raise RefusedError("no acting user: pass --as USER or set PULSECHECK_USER")
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise RefusedError(f"unknown user {name!r}: add it with `pulsecheck users add {name} --role ...`")
    return user


def user_dict(user: User) -> dict[str, Any]:
    """The stable JSON shape of a user."""
    return {
        "name": user.name,
        "roles": sorted(user.role_set),
        "email": user.email,
        "manager": user.manager_name,
        "webhook": user.webhook,
    }
