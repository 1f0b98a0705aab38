"""The composition root: settings, then the database, then the commit hooks, installed in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING

from pulsecheck.timeutil import end_of_day

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from pulsecheck.config import Settings
    from pulsecheck.storage.chain import Signer
    from pulsecheck.storage.db import Database
    from pulsecheck.storage.models import User


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
    install_hooks(database, settings)
    return database


def check_role_users(database: Database, settings: Settings) -> None:
    """InputError naming the settings key when a `[notifications.roles]` list names a user who does not exist."""
    from sqlalchemy import select

    from pulsecheck.errors import InputError
    from pulsecheck.storage.models import User
    from pulsecheck.yamlfile import suggest

    roles = settings.notifications.roles
    if not any(roles.values()):
        return
    with database.engine.connect() as conn:
        known = set(conn.scalars(select(User.name)))
    for role, names in roles.items():
        for name in names:
            if name not in known:
                where = settings.where("notifications", "roles", role)
                raise InputError(f"{where}: unknown user {name!r}{suggest(name, sorted(known))}")


class App:
    """What every command needs: settings, the database, the clock and the acting user."""

    def __init__(self, settings: Settings, command: str | None = None) -> None:
        self.settings = settings
        self.command = command  # the CLI's subcommand, if any
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            from pulsecheck.storage.chain import SIGNER

            self._db = open_database(self.settings, check_roles=self.command not in SETUP_COMMANDS)
            self._db.sessions.configure(info={SIGNER: self.signer()})  # every transaction signs its sign-offs
        return self._db

    def signer(self) -> Signer:
        """What signs this command's sign-offs: the `[signing]` key, registered to the user who signs off."""
        from pulsecheck.workflow.keys import signer_for

        return signer_for(self.settings.signing.required, self.settings.signing.key, self.now)

    def now(self) -> datetime:
        return self.settings.now()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.db.transaction() as session:
            yield session

    def actor(self, session: Session) -> User:
        from pulsecheck.workflow.users import acting_user

        return acting_user(session, self.settings.user)

    def end_of_day(self, day: date) -> datetime:
        """A date taken as the end of that business day (aware, in the business time zone)."""
        return end_of_day(day, self.settings.tz)
