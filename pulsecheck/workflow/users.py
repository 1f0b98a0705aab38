"""Users and roles; resolving the acting user."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError, NotFoundError, RefusedError
from pulsecheck.storage.models import User
from pulsecheck.vocab import ROLES


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
