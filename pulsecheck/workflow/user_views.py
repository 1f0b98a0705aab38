"""Users as `users list` shows them, read on SQLAlchemy Core: a read command that imports no ORM (issue 17)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from pulsecheck.errors import NotFoundError
from pulsecheck.storage.paging import Page, PageRequest, fetch_page
from pulsecheck.storage.tables import USERS, role_set

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

_USER = USERS.c
_SHOWN = select(_USER.name, _USER.roles, _USER.email, _USER.manager_name, _USER.webhook)  # what `user_dict` reads
SORTS = {"name": (_USER.name,)}


def user_page(
    db: Session | Connection, request: PageRequest, role: str | None = None, manager: str | None = None
) -> Page[dict[str, Any]]:
    """One page of users by name in their JSON shape; `role` keeps holders of a role, `manager` their reports."""
    query = _SHOWN
    if role:
        # roles is a comma-separated list: match the whole word
        query = query.where(("," + _USER.roles + ",").contains(f",{role},", autoescape=True))
    if manager:
        query = query.where(_USER.manager_name == manager)
    return fetch_page(db, query, request, SORTS, scalars=False).map(user_dict)


def user_dict(user: Row[Any]) -> dict[str, Any]:
    """The stable JSON shape of a user (a row of the users table)."""
    return {
        "name": user.name,
        "roles": sorted(role_set(user.roles)),
        "email": user.email,
        "manager": user.manager_name,
        "webhook": user.webhook,
    }


def user_id_of(db: Session | Connection, name: str, what: str = "user") -> int:
    """The id of the user called `name`, or an input error naming it (`what`: the option that named them)."""
    found = db.scalar(select(USERS.c.id).where(USERS.c.name == name))
    if found is None:
        raise NotFoundError(f"{what}: unknown user {name!r}")
    return int(found)
