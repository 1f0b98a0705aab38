"""Engine and sessions from a database URL; one transaction per command."""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, NoSuchModuleError, OperationalError, ProgrammingError

from pulsecheck.errors import ConflictError, InputError, RefusedError
from pulsecheck.jsontext import dumps_encoder

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

# psycopg is an optional dependency: the base install serves SQLite only.
POSTGRES_EXTRA = "PostgreSQL needs the postgres extra: pip install 'pulsecheck[postgres]'"

# Bumped together with each new file in storage/migrations/versions (a test checks they agree).
HEAD_REVISION = "0024"

# `scheme://user:password@host`: everything between the user's colon and the last @ is the password.
_PASSWORD = re.compile(r"^((?:[\w+.-]+://)?[^:/@?#]*):(.*)@")


# Every SQLite connection's settings (the benches' plain-SQL floors run with them too): foreign keys enforced; a
# write-ahead log, synced at checkpoints only; a writer waits up to 10 s for another's lock; and the log is
# checkpointed into the file once it holds 10,000 pages (40 MB) rather than SQLite's 1,000. A checkpoint syncs
# the file to disk: at 1,000 pages a review transition (17 pages written) paid for one every 60 commits, which
# took a third of the time of its statements replayed in sqlite3.
SQLITE_PRAGMAS = (
    "PRAGMA foreign_keys=ON",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA wal_autocheckpoint=10000",
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets foreign keys, WAL and a busy timeout. A bad URL's error hides its password."""
    given = url
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    try:
        engine = create_engine(url, future=True, json_serializer=dumps_encoder())  # imports the driver
    except (ImportError, NoSuchModuleError) as exc:
        if url.startswith("postgresql+psycopg://"):
            raise InputError(POSTGRES_EXTRA) from None
        raise InputError(_url_problem(given, exc)) from None
    except Exception as exc:  # malformed URL, unknown dialect
        raise InputError(_url_problem(given, exc)) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def engine_of(db: Session | Connection) -> Engine:
    """The engine a session or a connection works on."""
    return db.engine if isinstance(db, Connection) else db.get_bind().engine


def redact_url(url: str) -> str:
    """A database URL fit to print: the password replaced by `***`, even when the URL does not parse."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # malformed: hide whatever sits where a password would
        return _PASSWORD.sub(r"\1:***@", url, count=1)


def _url_problem(url: str, exc: Exception) -> str:
    """`--db URL: what is wrong`, the password hidden. A parse error's text may quote any part of the URL (the
    password among it), so only a driver error, which names the scheme alone, is passed on."""
    if isinstance(exc, ImportError | NoSuchModuleError):
        return f"--db {redact_url(url)!r}: {exc}"
    return f"--db {redact_url(url)!r}: not a database URL (like sqlite:///pulsecheck.db or postgresql://user@host/db)"


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None for an empty database."""
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError) as exc:
        if "alembic_version" in str(exc):
            return None
        url = engine.url.render_as_string(hide_password=True)
        raise RefusedError(f"cannot open database {url}: {exc.orig}") from None


def ensure_schema(engine: Engine) -> None:
    """Create the schema on an empty database (zero set-up); refuse an out-of-date one."""
    revision = schema_revision(engine)
    if revision == HEAD_REVISION:
        return
    if revision is None:
        from pulsecheck.storage.migrate import upgrade

        upgrade(engine)
        return
    raise RefusedError(
        f"database schema is at revision {revision}, expected {HEAD_REVISION}: run `pulsecheck db upgrade`"
    )


class Database:
    """The engine plus a session factory; `transaction()` is the unit of work of one command, `reading()` a read
    command's connection. The session factory (and with it SQLAlchemy's ORM) is made on first use: a read command on
    SQLAlchemy Core never imports the ORM, which costs about what the whole command may cost above its floor."""

    def __init__(self, url: str) -> None:
        from pulsecheck.collector import resume_collector

        resume_collector()  # a command's start-up is over when it opens its database
        self.url = url
        self.engine = make_engine(url)
        self._sessions: sessionmaker[Session] | None = None
        self._when_made: list[Callable[[], None]] = []
        _OPENED.add(self)

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory, made on first use (then what waited for it, `when_sessions`, is done)."""
        if self._sessions is None:
            from sqlalchemy.orm import sessionmaker

            self._sessions = sessionmaker(self.engine, expire_on_commit=False)
            for ready in self._when_made:
                ready()
        return self._sessions

    def when_sessions(self, ready: Callable[[], None]) -> None:
        """Call `ready` once the session factory is made (at once if it is): the commit hooks are installed then."""
        if self._sessions is None:
            self._when_made.append(ready)
        else:
            ready()

    def session(self) -> Session:
        """A new session (the caller commits or rolls back)."""
        return self.sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits together at the end, or not at all."""
        from sqlalchemy.orm.exc import StaleDataError

        session = self.sessions()
        try:
            with _conflicts(), session.begin():
                yield session
        except StaleDataError:
            raise ConflictError(
                "someone else changed this record at the same time; nothing was saved: reload and try again"
            ) from None
        finally:
            session.close()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for a command that only reads, on SQLAlchemy Core: one transaction, rolled back at the end
        (it wrote nothing), with no session and none of the commit hooks."""
        with _conflicts(), self.engine.connect() as connection:
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _conflicts() -> Iterator[None]:
    """A clash with another command (a race to open a review, a locked database) as a conflict, said so."""
    try:
        yield
    except IntegrityError as exc:
        if "uq_reviews_open_account" in str(exc.orig) or "reviews.account_id" in str(exc.orig):
            raise ConflictError(
                "another command opened a review of this account at the same time; nothing was saved"
            ) from None
        raise
    except OperationalError as exc:
        if "locked" in str(exc.orig) or "deadlock" in str(exc.orig):
            raise ConflictError("the database is busy with another command; nothing was saved: try again") from None
        raise


_OPENED: weakref.WeakSet[Database] = weakref.WeakSet()  # every Database of the process not yet freed


def close_all() -> None:
    """Close every database this process opened (its pooled connections), as the end of a process does."""
    for database in list(_OPENED):
        database.dispose()
