"""API tokens as `tokens list` shows them, read on SQLAlchemy Core: a read command that imports no ORM (issue 17);
and who may manage whose tokens, which `tokens` (create, revoke) checks too."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from pulsecheck.errors import RefusedError
from pulsecheck.states import permissions
from pulsecheck.storage.more_tables import API_TOKENS
from pulsecheck.storage.tables import USERS, role_set
from pulsecheck.timeutil import iso
from pulsecheck.workflow.user_views import user_id_of

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

_TOKEN = API_TOKENS.c
_USER = USERS.c


def check_may_manage(actor: str, roles: Collection[str], user: str) -> None:
    """Refused unless the user named `actor`, holding `roles`, may manage the tokens of `user`: their own, or
    anyone's for an admin."""
    if not permissions.allowed("tokens.manage", permissions.actor(actor, roles, {"self": user})):
        raise RefusedError(f"{actor} cannot manage the API tokens of {user} (their own, or an admin)")


def token_list(db: Session | Connection, actor: str, user_name: str | None = None) -> list[Row[Any]]:
    """The tokens `actor` lists, oldest first, each with its owner's name (`user_name`): the actor's own, or
    `user_name`'s (their own, or an admin's for anyone; an admin without `user_name` sees every user's)."""
    me = db.execute(select(_USER.id, _USER.roles).where(_USER.name == actor)).one()
    query = select(API_TOKENS, _USER.name.label("user_name")).join(USERS, _USER.id == _TOKEN.user_id)
    if user_name is not None:
        user_id = user_id_of(db, user_name, "--user")
        check_may_manage(actor, role_set(me.roles), user_name)
        query = query.where(_TOKEN.user_id == user_id)
    elif "admin" not in role_set(me.roles):
        query = query.where(_TOKEN.user_id == me.id)
    return list(db.execute(query.order_by(_TOKEN.id)))


def token_dict(token: Row[Any], now: datetime) -> dict[str, Any]:
    """The stable JSON shape of a token (a row of `token_list`) at `now`: never its secret nor its hash."""
    expired = token.expires_at is not None and token.expires_at <= now
    return {
        "id": token.id,
        "user": token.user_name,
        "name": token.name,
        "scope": token.scope,
        "created_by": token.created_by,
        "created_at": iso(token.created_at),
        "expires_at": iso(token.expires_at),
        "revoked_by": token.revoked_by,
        "revoked_at": iso(token.revoked_at),
        "state": "revoked" if token.revoked_at is not None else "expired" if expired else "active",
    }
