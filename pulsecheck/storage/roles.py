"""PostgreSQL roles: the group role every pulsecheck user's login role joins, with the grants the commands need,
and audit tables that only grow (INSERT and SELECT; UPDATE, DELETE and TRUNCATE revoked, and a trigger that
refuses them for every role but the schema's owner, so a grant added by mistake still does not open them).

Idempotent: `pulsecheck init` and `db upgrade` run `ensure_roles` each time (tables a later migration adds get
their grants then). On SQLite there are no roles: the OS login is the identity and the file's permissions guard it.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError, RefusedError

GROUP = "pulsecheck_users"
AUDIT_TABLES = ("review_events", "cycle_events", "audit_chain")

_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION {schema}.pulsecheck_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_user::text <> (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = TG_TABLE_SCHEMA) THEN
        RAISE EXCEPTION 'permission denied: % is append-only (% refused for %)', TG_TABLE_NAME, TG_OP, current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$
"""


def ensure_roles(engine: Engine) -> str | None:
    """Create the group role and its grants when the connected role may (a superuser, or one with CREATEROLE
    that owns the schema); on PostgreSQL, a note saying what was done or why not; None on other databases."""
    if engine.dialect.name != "postgresql":
        return None
    try:
        with engine.begin() as conn:
            schema = _setup(conn)
    except DBAPIError as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        return f"database roles not set up ({reason}): run `pulsecheck db upgrade` as the schema owner with CREATEROLE"
    return f"database roles ready: {GROUP} may use schema {schema}; audit tables are append-only"


def _setup(conn: Connection) -> str:
    """The statements of `ensure_roles`, in one transaction; the schema's name."""
    quote = conn.dialect.identifier_preparer.quote
    schema = str(conn.scalar(text("SELECT current_schema()")))
    q = quote(schema)
    exists = conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": GROUP})
    if not exists:
        conn.execute(text(f"CREATE ROLE {GROUP} NOLOGIN"))
    for statement in (
        f"GRANT USAGE ON SCHEMA {q} TO {GROUP}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {q} TO {GROUP}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {q} TO {GROUP}",
        _APPEND_ONLY.format(schema=q),
    ):
        conn.execute(text(statement))
    present = set(conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}))
    for table in (t for t in AUDIT_TABLES if t in present):
        target = f"{q}.{quote(table)}"
        conn.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON {target} FROM {GROUP}"))
        conn.execute(text(f"DROP TRIGGER IF EXISTS pulsecheck_append_only ON {target}"))
        conn.execute(
            text(
                f"CREATE TRIGGER pulsecheck_append_only BEFORE UPDATE OR DELETE ON {target} "
                f"FOR EACH ROW EXECUTE FUNCTION {q}.pulsecheck_append_only()"
            )
        )
        conn.execute(text(f"DROP TRIGGER IF EXISTS pulsecheck_no_truncate ON {target}"))
        conn.execute(
            text(
                f"CREATE TRIGGER pulsecheck_no_truncate BEFORE TRUNCATE ON {target} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {q}.pulsecheck_append_only()"
            )
        )
    return schema


def create_login_role(session: Session, login: str) -> None:
    """Create the PostgreSQL login role `login` as a member of the group role (or add an existing role to the
    group), in the session's transaction; refused on SQLite and when the connection may not create roles."""
    if session.get_bind().dialect.name != "postgresql":
        raise InputError("--db-role: only for PostgreSQL (on SQLite the OS login is the identity)")
    quoted = session.get_bind().dialect.identifier_preparer.quote(login)
    if not session.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": GROUP}):
        raise RefusedError(f"--db-role: no role {GROUP} yet: run `pulsecheck db upgrade` as the schema's owner")
    exists = session.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": login})
    statement = f"GRANT {GROUP} TO {quoted}" if exists else f"CREATE ROLE {quoted} LOGIN IN ROLE {GROUP}"
    try:
        with session.begin_nested():
            session.execute(text(statement))
    except DBAPIError as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        raise RefusedError(f"--db-role: cannot create role {login!r}: {reason}") from None
