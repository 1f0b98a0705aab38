"""The composition root: settings, then the database, then the commit hooks, installed in one place."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from pulsecheck.timeutil import end_of_day

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from pulsecheck.config import Settings
    from pulsecheck.states.permissions import Actor
    from pulsecheck.storage.chain import Signer
    from pulsecheck.storage.db import Database
    from pulsecheck.storage.models import User
    from pulsecheck.workflow.identity import Identity


def install_hooks(database: Database, settings: Settings) -> None:
    """What every transaction does besides its own work, in that same transaction: keep scheduled jobs in step
    with the rows, and write the notifications that review events cause."""
    from pulsecheck.notifications import notices
    from pulsecheck.scheduling import sync
    from pulsecheck.storage import chain

    sync.install(database, settings)
    notices.install(database, settings)
    chain.install(database)  # last: it chains what the hooks before it wrote too


# The commands that create users: checking the role lists before them would lock out the way to fix a list.
SETUP_COMMANDS = frozenset({"init", "db", "users"})


def open_database(settings: Settings, check_roles: bool = True) -> Database:
    """The database of `settings`, its schema created on first use, the users of `[notifications.roles]`
    checked (unless `check_roles` is false), with the commit hooks installed."""
    from pulsecheck.storage.db import Database, ensure_schema

    database = Database(settings.database_url)
    ensure_schema(database.engine)
    if check_roles:
        check_role_users(database, settings)
    database.when_sessions(lambda: install_hooks(database, settings))  # a command on Core makes no session
    return database


def check_role_users(database: Database, settings: Settings) -> None:
    """InputError naming the settings key when a `[notifications.roles]` list names a user who does not exist."""
    from sqlalchemy import select

    from pulsecheck.errors import InputError
    from pulsecheck.storage.tables import USERS

    if settings.is_default("notifications", "roles"):  # no lists (and no settings model to read)
        return
    roles = settings.role_lists()
    if not any(roles.values()):
        return
    users = USERS.c  # a Core statement, for the names listed only: every command makes this check
    listed = sorted({name for names in roles.values() for name in names})
    with database.engine.connect() as conn:
        known = set(conn.scalars(select(users.name).where(users.name.in_(listed))))
    for role, names in roles.items():
        for name in names:
            if name not in known:
                from pulsecheck.yamlfile import suggest  # with YAML: only when there is something to suggest

                with database.engine.connect() as conn:  # every user, to suggest the name meant
                    everyone = sorted(conn.scalars(select(users.name)))
                where = settings.where("notifications", "roles", role)
                raise InputError(f"{where}: unknown user {name!r}{suggest(name, everyone)}")


def os_login() -> str:
    """The login of the process's effective user, from the password database (not $USER or $LOGNAME, which
    anyone sets)."""
    import os
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid without a passwd entry (some containers): no login to map
        return ""


def authenticated_login(db: Session | Connection) -> str:
    """Who this process authenticated as: the database session user on PostgreSQL (the server checked it), the
    OS login on SQLite (whoever can write the file is on this machine)."""
    from sqlalchemy import Connection, text

    dialect = db.dialect if isinstance(db, Connection) else db.get_bind().dialect
    if dialect.name == "postgresql":
        return str(db.scalar(text("SELECT session_user")))
    return os_login()


class App:
    """What every command needs: settings, the database, the clock and the acting user."""

    def __init__(
        self,
        settings: Settings,
        command: str | None = None,
        note: Callable[[str], None] | None = None,
        database: Database | None = None,
    ) -> None:
        self.settings = settings
        self.command = command  # the CLI's subcommand, if any
        self.note = note or (lambda _line: None)  # says what the command did besides its work (stderr)
        self._db: Database | None = database  # one opened by `open_database` (a bench reuses it across commands)
        self._identity: Identity | None = None
        self._actor_row: dict[str, Any] | None = None  # the acting user's columns as last read (`actor`)
        self._actor_key: Any = None  # its identity key in a session (made once, with the row)
        self._runs_recovered = False
        self._watching = False
        self._row_key = ("app:actor-row", id(self))  # session.info: the acting user's row this transaction read

    @property
    def requested_user(self) -> str | None:
        """The user named by `--as` or PULSECHECK_USER (an admin acting for them), else None."""
        if self.settings.origin("user") in ("--as", "PULSECHECK_USER") and self.settings.user:
            return self.settings.user
        return None

    @property
    def db(self) -> Database:
        if self._db is None:
            database = self._db = open_database(self.settings, check_roles=self.command not in SETUP_COMMANDS)
            database.when_sessions(lambda: self._sign(database))
        return self._db

    def _sign(self, database: Database) -> None:
        """Every transaction of `database` signs its sign-offs."""
        from pulsecheck.storage.chain import SIGNER

        database.sessions.configure(info={SIGNER: self.signer()})

    def signer(self) -> Signer:
        """What signs this command's sign-offs: the `[signing]` key, registered to the user who signs off. Made
        when a sign-off is signed: a command that signs nothing reads no `[signing]` section (its values were
        validated with the settings; the key file is read when it signs)."""
        return _LazySigner(self._make_signer)

    def _make_signer(self) -> Signer:
        from pulsecheck.workflow.keys import signer_for

        return signer_for(self.settings.signing.required, self.settings.signing.key, self.now)

    def now(self) -> datetime:
        return self.settings.now()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A transaction of the authenticated user: refused (before any work) for a login no user maps to and
        for `--as` by a non-admin; the audit chain records who acted (`root as bob` for an admin's `--as`)."""
        from pulsecheck.storage import chain

        self.recover_runs()
        with self.db.transaction() as session:
            session.info[chain.ACTOR] = self.identity(session).label
            yield session

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read command's transaction, as the authenticated user (refused as `transaction` refuses), on SQLAlchemy
        Core: a connection, no session, so that the command does not import the ORM (issue 17)."""
        self.recover_runs()
        with self.db.reading() as connection:
            self.identity(connection)
            yield connection

    def recover_runs(self) -> None:
        """Once per command, before its own work: mark failed every run left `running` by a process that is gone
        (one index probe when none is running), in a transaction of its own, so that it holds whatever the
        command then does; each run so marked is noted."""
        if self._runs_recovered:
            return
        self._runs_recovered = True
        from pulsecheck.workflow.leases import any_running

        with self.db.reading() as connection:  # the probe on Core: a read command imports no ORM for it
            if not any_running(connection):
                return
        from pulsecheck.storage import chain
        from pulsecheck.workflow.evaluation import recover_runs

        with self.db.transaction() as session:
            session.info[chain.ACTOR] = self.identity(session).label
            found = recover_runs(session, self.now())
        for line in found:
            self.note(f"note: {line}: marked failed")

    def identity(self, db: Session | Connection) -> Identity:
        """Who authenticated and whom they act for (resolved once per command)."""
        if self._identity is None:
            from pulsecheck.workflow.identity import authenticate

            self._identity = authenticate(db, authenticated_login(db), self.requested_user)
            self._label_sessions(self._identity.label)
        return self._identity

    def _label_sessions(self, label: str) -> None:
        """Every later transaction of this database (the evaluator's and the scheduler's own, too) is chained
        as the work of `label`."""
        database = self.db

        def install() -> None:  # with the session factory: a command on Core makes none
            from sqlalchemy import event

            from pulsecheck.storage.chain import ACTOR

            def label_it(session: Session, _transaction: object, _connection: object) -> None:
                session.info.setdefault(ACTOR, label)

            event.listen(database.sessions, "after_begin", label_it)

        database.when_sessions(install)

    def actor(self, session: Session) -> User:
        """The user the command acts as, in `session`. Read once per command, as its identity is (the object this
        session already holds, else one SELECT); a later transaction of the command gets it from the row read then,
        attached without a query, unless a transaction of this database has written a user since (read again)."""
        from sqlalchemy.orm import make_transient_to_detached

        from pulsecheck.storage.bulk import transient
        from pulsecheck.storage.models import User
        from pulsecheck.workflow.users import get_user

        acting = self.identity(session).acting
        row = self._actor_row
        if row is not None:
            attached: User | None = session.identity_map.get(self._actor_key)
            if attached is not None:
                return attached
            user = transient(User, [row])[0]
            make_transient_to_detached(user)
            session.add(user)
            return user
        held = (obj for obj in session.identity_map.values() if isinstance(obj, User) and obj.name == acting)
        user = next(held, None) or get_user(session, acting)
        if not session.is_modified(user) and user not in session.new:
            loaded = {key: user.__dict__[key] for key in _user_columns() if key in user.__dict__}
            if len(loaded) == len(_user_columns()):  # kept once its transaction commits (`keep`)
                self._watch_users()
                session.info[self._row_key] = loaded
        return user

    def who(self, session: Session) -> Actor:
        """The user the command acts as, as the permission table sees them (name and roles): from the row `actor`
        read, without attaching an object to `session` (what a review transition needs), unless `session` holds
        the user's object already (changed in it, perhaps) or no row is kept yet (then `actor`)."""
        from pulsecheck.states import permissions
        from pulsecheck.storage.models import role_set

        row = self._actor_row
        if row is not None and self._actor_key not in session.identity_map:
            return permissions.actor(row["name"], role_set(row["roles"]))
        user = self.actor(session)
        return permissions.actor(user.name, user.role_set)

    def _watch_users(self) -> None:
        """Keep the acting user's row read by a transaction that commits; forget it when a transaction of this
        database writes a user (roles, names change)."""
        from sqlalchemy import event
        from sqlalchemy.orm.util import identity_key

        from pulsecheck.storage.models import User

        def forget(session: Session, _context: object) -> None:
            if any(isinstance(obj, User) for obj in (*session.new, *session.dirty, *session.deleted)):
                self._actor_row = None
                session.info.pop(self._row_key, None)

        def keep(session: Session) -> None:
            row = session.info.pop(self._row_key, None)
            if row is not None:
                self._actor_row, self._actor_key = row, identity_key(User, row["id"])

        if not self._watching:
            self._watching = True
            event.listen(self.db.sessions, "after_flush", forget)
            event.listen(self.db.sessions, "after_commit", keep)
            event.listen(self.db.sessions, "after_rollback", lambda session: session.info.pop(self._row_key, None))

    def require(self, session: Session, action: str) -> User:
        """The acting user, if the permission table lets them take `action` (one with no record to relate to:
        evaluate, scheduler run, outbox retry); refused otherwise."""
        from pulsecheck.errors import RefusedError
        from pulsecheck.states import permissions

        user = self.actor(session)
        reason = permissions.refusal(action, permissions.actor(user.name, user.role_set))
        if reason:
            raise RefusedError(reason)
        return user

    def end_of_day(self, day: date) -> datetime:
        """A date taken as the end of that business day (aware, in the business time zone)."""
        return end_of_day(day, self.settings.tz)


@cache
def _user_columns() -> tuple[str, ...]:
    """The attribute names of the users table's columns."""
    from sqlalchemy import inspect

    from pulsecheck.storage.models import User

    return tuple(attr.key for attr in inspect(User).column_attrs)


class _LazySigner:
    """A `Signer` made on first use by `make`."""

    def __init__(self, make: Callable[[], Signer]) -> None:
        self._make = make
        self._signer: Signer | None = None

    def _made(self) -> Signer:
        if self._signer is None:
            self._signer = self._make()
        return self._signer

    def signed_at(self) -> datetime:
        return self._made().signed_at()

    def sign(self, session: Session, principal: str, data: bytes) -> tuple[str, str] | None:
        return self._made().sign(session, principal, data)
