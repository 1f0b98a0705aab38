"""Who is acting, on PostgreSQL: the database session user authenticates. Two real login roles, made by an admin's
`users add --db-role`, each mapped to its user; the audit tables only grow, for every role but the schema owner."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from pulsecheck.cli import cli
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import AuditEntry
from tests.conftest import NOW, PG_URL, Factory

pytestmark = pytest.mark.postgres
Run = Callable[..., Result]
PLAIN = PG_URL.replace("+psycopg", "")


def url_as(pg_url: str, role: str) -> str:
    """`pg_url` connecting as `role` (trust authentication: the URL's user is who the server says we are)."""
    return pg_url.replace("postgres@", f"{role}@", 1)


@pytest.fixture
def roles() -> Iterator[tuple[str, str]]:
    """Names for two login roles (an admin's and a reviewer's), dropped after the test."""
    tag = uuid.uuid4().hex[:8]
    names = (f"pc_ann_{tag}", f"pc_bob_{tag}")
    yield names
    with psycopg.connect(PLAIN, autocommit=True) as conn:
        for name in names:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
                conn.execute(f'DROP OWNED BY "{name}"')
                conn.execute(f'DROP ROLE "{name}"')


@pytest.fixture
def pulsecheck(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Run:
    monkeypatch.setenv("PULSECHECK_NOW", NOW.isoformat())
    for name in ("PULSECHECK_USER", "PULSECHECK_CONFIG", "PULSECHECK_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)

    def invoke(url: str, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--db", url, *args], catch_exceptions=False)

    return invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.output)
    return str(result.stdout)


@pytest.fixture
def set_up(pg_url: str, roles: tuple[str, str], pulsecheck: Run) -> tuple[str, str]:
    """`init` as the superuser (it owns the schema and becomes the first admin); then ann (admin) and bob
    (reviewer, reporting to maria) with their login roles, maria (manager) and ACME owned by bob."""
    ann, bob = roles
    said = ok(pulsecheck(pg_url, "init"))
    assert "database roles ready: pulsecheck_users may use schema" in said
    assert "user postgres: admin (login postgres)" in said
    assert ok(pulsecheck(pg_url, "users", "add", "ann", "--role", "admin", "--login", ann, "--db-role")) == (
        f"user ann: admin (database role {ann} created)\n"
    )
    ok(pulsecheck(pg_url, "users", "add", "maria", "--role", "manager"))
    ok(pulsecheck(pg_url, "users", "add", "bob", "--role", "reviewer", "--manager", "maria", "--login", bob,
                  "--db-role"))
    database = Database(pg_url)
    Factory(database, NOW).account("ACME", owner="bob", manager="maria")
    database.dispose()
    return url_as(pg_url, ann), url_as(pg_url, bob)


def test_each_login_role_is_mapped_to_its_user(set_up: tuple[str, str], pulsecheck: Run, pg_url: str) -> None:
    ann_url, bob_url = set_up
    assert ok(pulsecheck(bob_url, "review", "new", "ACME")).startswith("review 1 opened for ACME (reviewer bob,")
    refused = pulsecheck(bob_url, "--as", "maria", "review", "show", "1")
    assert (refused.exit_code, refused.stderr) == (
        1, "error: --as maria: only an admin may act as another user, and bob is not one\n"
    )
    added = pulsecheck(bob_url, "users", "add", "bob", "--role", "admin")
    assert (added.exit_code, added.stderr) == (1, "error: users add bob: only an admin may manage, not bob\n")
    assert ok(pulsecheck(ann_url, "--as", "maria", "review", "reassign", "1", "--approver", "ann",
                         "--comment", "covering")) == "review 1: approver ann\n"
    database = Database(pg_url)
    with database.transaction() as session:
        actors = [e.actor for e in session.scalars(select(AuditEntry).where(AuditEntry.kind == "review_event"))]
    database.dispose()
    assert actors == ["bob", "ann as maria"]


def test_a_reviewer_role_cannot_update_or_delete_audit_rows(set_up: tuple[str, str], pulsecheck: Run,
                                                            pg_url: str, roles: tuple[str, str]) -> None:
    _, bob_url = set_up
    ok(pulsecheck(bob_url, "review", "new", "ACME"))
    schema = pg_url.rsplit("%3D", 1)[1]
    with psycopg.connect(url_as(PLAIN, roles[1]).split("?")[0], autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        assert conn.execute("SELECT count(*) FROM review_events").fetchone() == (1,)  # reading is fine
        for statement in ("UPDATE review_events SET comment = 'forged'", "DELETE FROM review_events",
                          "TRUNCATE review_events", "UPDATE audit_chain SET actor = 'x'", "DELETE FROM audit_chain",
                          "DELETE FROM cycle_events"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(statement)
    # A grant added by mistake does not open them: the trigger refuses every role but the schema's owner.
    with psycopg.connect(PLAIN, autocommit=True) as conn:
        conn.execute(f"GRANT UPDATE, DELETE ON {schema}.review_events TO pulsecheck_users")
    with psycopg.connect(url_as(PLAIN, roles[1]).split("?")[0], autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="review_events is append-only"):
            conn.execute("DELETE FROM review_events")
    with psycopg.connect(PLAIN, autocommit=True) as conn:  # the owner still may (migrations, repairs)
        conn.execute(f"UPDATE {schema}.review_events SET comment = comment")


def test_ensure_roles_is_idempotent_and_a_plain_role_cannot_create_roles(
    set_up: tuple[str, str], pulsecheck: Run, pg_url: str
) -> None:
    ann_url, bob_url = set_up
    again = ok(pulsecheck(pg_url, "db", "upgrade"))
    assert "database roles ready" in again
    refused = pulsecheck(ann_url, "users", "add", "carol", "--role", "reviewer", "--db-role")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: --db-role: cannot create role 'carol': permission denied")
    assert "carol" not in ok(pulsecheck(ann_url, "users", "list"))  # nothing half written
