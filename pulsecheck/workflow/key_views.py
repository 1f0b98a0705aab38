"""Registered signing keys as `keys list` shows them, read on SQLAlchemy Core: a read command that imports no ORM
(issue 17). `keys` registers and revokes them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from pulsecheck.storage.more_tables import USER_KEYS
from pulsecheck.storage.paging import Page, PageRequest, fetch_page
from pulsecheck.storage.tables import USERS
from pulsecheck.timeutil import iso
from pulsecheck.workflow.user_views import user_id_of

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

_KEY = USER_KEYS.c
_USER = USERS.c
SORTS = {"user": (_USER.name, _KEY.id), "added": (_KEY.id,)}


def key_page(db: Session | Connection, request: PageRequest, user_name: str | None = None) -> Page[dict[str, Any]]:
    """One page of keys in their JSON shape (by user by default, or oldest first); `user_name` keeps that user's."""
    query = select(USER_KEYS, _USER.name.label("user_name")).join(USERS, _USER.id == _KEY.user_id)
    if user_name is not None:
        user_id = user_id_of(db, user_name, "--user")
        query = query.where(_USER.id == user_id)
    return fetch_page(db, query, request, SORTS, scalars=False).map(key_dict)


def key_dict(key: Row[Any]) -> dict[str, Any]:
    """The stable JSON shape of a registered key (a row of the keys table with its user's name, `user_name`)."""
    kind, _, rest = key.public_key.partition(" ")
    return {
        "id": key.id,
        "user": key.user_name,
        "fingerprint": key.fingerprint,
        "type": kind,
        "comment": rest.partition(" ")[2] or None,
        "added_by": key.added_by,
        "added_at": iso(key.added_at),
        "revoked_by": key.revoked_by,
        "revoked_at": iso(key.revoked_at),
    }
