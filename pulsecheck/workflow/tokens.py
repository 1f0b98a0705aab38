"""Personal access tokens for the JSON API: create (the secret shown once), revoke, and find the live token a
request presents. How `tokens list` shows them is `token_views`, on Core.

Only the SHA-256 of a token is stored. A token is 32 random bytes (256 bits), so no guessing or precomputation
can find it from its hash; a slow password hash such as argon2 protects low-entropy passwords and would only
cost every API request tens of milliseconds and make the lookup by hash (one indexed equality) impossible."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError, NotFoundError, RefusedError
from pulsecheck.storage.models import ApiToken, User
from pulsecheck.timeutil import iso
from pulsecheck.workflow.token_views import check_may_manage
from pulsecheck.workflow.users import get_user

PREFIX = "pct_"  # so a leaked token is recognisable (secret scanners, logs)
SCOPES = ("read", "write")


def token_hash(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    session: Session, actor: User, name: str, scope: str, now: datetime, expires_days: int | None = None,
    user_name: str | None = None,
) -> tuple[ApiToken, str]:
    """A new token of `user_name` (default: the actor) and its secret, which is not stored and cannot be shown
    again."""
    if not name.strip() or len(name) > 100:
        raise InputError("NAME: give the token a name of 1 to 100 characters")
    if scope not in SCOPES:
        raise InputError(f"--scope: {scope!r} is not one of {', '.join(SCOPES)}")
    if expires_days is not None and not 1 <= expires_days <= 3650:
        raise InputError("--expires: a number of days from 1 to 3650")
    user = get_user(session, user_name or actor.name, what="--user")
    check_may_manage(actor.name, actor.role_set, user.name)
    secret = PREFIX + secrets.token_urlsafe(32)
    expires = now + timedelta(days=expires_days) if expires_days is not None else None
    token = ApiToken(user_id=user.id, name=name.strip(), scope=scope, token_hash=token_hash(secret),
                     created_by=actor.name, created_at=now, expires_at=expires)
    session.add(token)
    session.flush()
    return token, secret


def revoke_token(session: Session, actor: User, token_id: int, now: datetime) -> ApiToken:
    """Revoke a token from `now` on: requests that present it are refused (401)."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFoundError(f"unknown token {token_id} (see `pulsecheck tokens list`)")
    user = session.get(User, token.user_id)
    assert user is not None  # a foreign key
    check_may_manage(actor.name, actor.role_set, user.name)
    if token.revoked_at is not None:
        raise RefusedError(f"token {token.id} was already revoked by {token.revoked_by} at {iso(token.revoked_at)}")
    token.revoked_by, token.revoked_at = actor.name, now
    session.flush()
    return token


@dataclass(frozen=True)
class Presented:
    """The live token a request presented: whose it is and what it may do."""

    id: int
    user: str
    scope: str


def live_token(session: Session, secret: str, now: datetime) -> Presented | None:
    """The token whose secret is `secret`, if it is neither revoked nor expired at `now`."""
    found = session.execute(
        select(ApiToken, User.name).join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_hash(secret))
    ).first()
    if found is None:
        return None
    token, user = found
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    return Presented(token.id, user, token.scope)
