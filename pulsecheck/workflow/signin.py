"""Web sign-in: argon2 password hashes, one-time set-password links (stored hashed), failed attempts counted in
the database per user and per address (so every worker agrees), and the server's generated secrets."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError, RefusedError
from pulsecheck.states import permissions
from pulsecheck.storage.models import User, WebInvite, WebPassword, WebSecret, WebSigninFailure
from pulsecheck.workflow.users import get_user

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_LENGTH = 10
SIGNIN_REFUSED = "wrong user name or password, or too many attempts: try again later"


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash to check unknown names against, so that a wrong name costs the same time as a wrong password."""
    return hasher().hash(secrets.token_urlsafe(16))


def check_strength(password: str) -> None:
    """InputError when a new password is too short or only spaces."""
    if len(password) < MIN_LENGTH or not password.strip():
        raise InputError(f"password: at least {MIN_LENGTH} characters")


def _store(session: Session, user: User, password: str, now: datetime) -> None:
    check_strength(password)
    stored = session.get(WebPassword, user.id)
    digest = hasher().hash(password)
    if stored is None:
        session.add(WebPassword(user_id=user.id, hash=digest, set_at=now))
    else:
        stored.hash, stored.set_at = digest, now
    session.flush()


def set_password(session: Session, actor: User, name: str, password: str, now: datetime) -> User:
    """Set `name`'s web password: one's own, or anyone's for an admin (the permission table's `users.password`)."""
    user = get_user(session, name)
    reason = permissions.refusal("users.password", permissions.actor(actor.name, actor.role_set, {"self": name}))
    if reason:
        raise RefusedError(f"users password {name}: {reason}")
    _store(session, user, password, now)
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_invite(session: Session, actor: User, name: str, now: datetime, valid: timedelta) -> str:
    """A new one-time set-password token for `name` (an admin's); only its hash is stored."""
    user = get_user(session, name)
    reason = permissions.refusal("users.invite", permissions.actor(actor.name, actor.role_set, {"self": name}))
    if reason:
        raise RefusedError(f"users invite {name}: {reason}")
    token = secrets.token_urlsafe(32)
    session.add(
        WebInvite(user_id=user.id, token_hash=_token_hash(token), created_by=actor.name, created_at=now,
                  expires_at=now + valid)
    )
    session.flush()
    return token


def invite_user(session: Session, token: str, now: datetime) -> User:
    """The user a set-password token is for; RefusedError (one message for all cases) when unknown, used or expired."""
    invite = session.scalar(select(WebInvite).where(WebInvite.token_hash == _token_hash(token)))
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        raise RefusedError(
            "this set-password link is not valid (used, expired or mistyped): ask an admin for a new one"
        )
    user = session.get(User, invite.user_id)
    assert user is not None  # a foreign key
    return user


def redeem_invite(session: Session, token: str, password: str, now: datetime) -> User:
    """Set the password of the token's user and use the token up."""
    user = invite_user(session, token, now)
    _store(session, user, password, now)
    invite = session.scalar(select(WebInvite).where(WebInvite.token_hash == _token_hash(token)))
    assert invite is not None
    invite.used_at = now
    session.flush()
    return user


@dataclass(frozen=True)
class Limits:
    """How many failed sign-ins in `window` refuse further attempts for one user name and one address."""

    per_user: int = 5
    per_address: int = 20
    window: timedelta = timedelta(minutes=15)


def _failures(session: Session, subject: str, since: datetime) -> int:
    query = select(func.count()).where(WebSigninFailure.subject == subject, WebSigninFailure.at > since)
    return int(session.scalar(query) or 0)


def sign_in(session: Session, name: str, password: str, address: str, now: datetime, limits: Limits) -> User | None:
    """The user whose name and password these are, else None (a failure recorded for the name and the address).
    Over the limit, or for an unknown name, the same None after the same argon2 work."""
    since = now - limits.window
    subjects = (f"user:{name.strip().lower()}"[:300], f"addr:{address}"[:300])
    blocked = (_failures(session, subjects[0], since) >= limits.per_user
               or _failures(session, subjects[1], since) >= limits.per_address)
    user = session.scalar(select(User).where(User.name == name.strip())) if name.strip() else None
    stored = session.get(WebPassword, user.id) if user is not None else None
    ok = _verify(stored.hash if stored else dummy_hash(), password) and stored is not None and not blocked
    if ok and user is not None and stored is not None:
        if hasher().check_needs_rehash(stored.hash):
            stored.hash = hasher().hash(password)
        session.execute(delete(WebSigninFailure).where(WebSigninFailure.subject == subjects[0]))
        return user
    session.add_all([WebSigninFailure(subject=subject, at=now) for subject in subjects])
    session.execute(delete(WebSigninFailure).where(WebSigninFailure.at <= now - 4 * limits.window))  # old rows
    session.flush()
    return None


def _verify(digest: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return bool(hasher().verify(digest, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def has_password(session: Session, user: User) -> bool:
    """Whether `user` can sign in with a password."""
    return session.get(WebPassword, user.id) is not None


def stored_secret(session: Session, name: str) -> str:
    """The server secret `name`, generated (32 random bytes) on first use and kept in the database, never shown."""
    found = session.get(WebSecret, name)
    if found is None:
        found = WebSecret(name=name, value=secrets.token_urlsafe(32))
        session.add(found)
        session.flush()
    return found.value
