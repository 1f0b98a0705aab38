"""Who is acting: the user an authenticated login (OS login or database session user) maps to, and whom an admin
acts for with `--as`. On SQLAlchemy Core (the users table, rows not objects): every command authenticates, read
commands among them, which do not import the ORM (issue 17). Works in a session's transaction as in a connection's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import bindparam, or_, select

from pulsecheck.errors import RefusedError
from pulsecheck.states import permissions
from pulsecheck.storage.tables import USERS, role_set

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

_USER = USERS.c
_BY_LOGIN = select(_USER.name, _USER.login, _USER.roles).where(
    or_(_USER.login == bindparam("login"), (_USER.name == bindparam("login")) & _USER.login.is_(None))
)
_BY_NAME = select(_USER.name).where(_USER.name == bindparam("name"))
_ANY = select(_USER.id).limit(1)


class Identity(NamedTuple):  # not a dataclass: cheaper to make at every start-up (issue 17)
    """Who authenticated (`login`, mapped to the user `me`) and whom they act for (`acting`: `me` unless an admin
    passed `--as`)."""

    login: str
    me: str
    acting: str

    @property
    def label(self) -> str:
        """What the audit chain records as the actor: `root`, or `root as bob` when an admin acts for bob."""
        return self.me if self.me == self.acting else f"{self.me} as {self.acting}"


def user_by_login(db: Session | Connection, login: str) -> Any:
    """The user (name, login, roles) who authenticates as `login`: the one whose login it is, else one of that name
    without a login."""
    found = db.execute(_BY_LOGIN, {"login": login}).all()
    return next((u for u in found if u.login == login), found[0] if found else None)


def authenticate(db: Session | Connection, login: str, requested: str | None) -> Identity:
    """The identity of a process that authenticated as `login`, acting for `requested` (`--as`) if given: refused
    for a login no user maps to, and for `--as` by anyone but an admin."""
    me = user_by_login(db, login) if login else None
    if me is None:
        if db.execute(_ANY).first() is None:
            raise RefusedError("no users yet: run `pulsecheck init` (the current login becomes the first admin)")
        raise RefusedError(
            f"login {login!r} is not a pulsecheck user: an admin runs `pulsecheck users add NAME --login {login}`"
        )
    if requested is None or requested == me.name:
        return Identity(login, me.name, me.name)
    if permissions.refusal("act_as", permissions.actor(me.name, role_set(me.roles))):
        raise RefusedError(f"--as {requested}: only an admin may act as another user, and {me.name} is not one")
    if db.execute(_BY_NAME, {"name": requested}).first() is None:
        raise RefusedError(f"unknown user {requested!r}: add it with `pulsecheck users add {requested} --role ...`")
    return Identity(login, me.name, requested)
