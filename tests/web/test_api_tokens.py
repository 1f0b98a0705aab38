"""`pulsecheck tokens create/list/revoke`: the secret printed once and stored only as its SHA-256, scopes,
expiry, own tokens only (any for an admin), revocation felt by the API at once, and every change in the audit
chain."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import AuditEntry
from tests.conftest import NOW, Factory, as_json, error, ok

CREATED = re.compile(r"^token (\d+) \((read|write)\): (pct_[A-Za-z0-9_-]{43})$", re.M)


def create(run: Any, who: str, *args: str) -> tuple[int, str]:
    found = CREATED.search(ok(run("--as", who, "tokens", "create", *args)))
    assert found, "the secret is printed"
    return int(found.group(1)), found.group(3)


def test_a_token_is_shown_once_and_stored_hashed(team: Factory, run: Any, database: Database, app: Any,
                                                 tmp_path: Path) -> None:
    token_id, secret = create(run, "bob", "laptop", "--scope", "write", "--expires", "30")
    listed = as_json(run("--as", "bob", "tokens", "list", "--json"))
    assert listed == [{
        "id": token_id, "user": "bob", "name": "laptop", "scope": "write", "created_by": "bob",
        "created_at": listed[0]["created_at"], "expires_at": listed[0]["expires_at"],
        "revoked_by": None, "revoked_at": None, "state": "active",
    }]
    assert listed[0]["created_at"][:19] == NOW.isoformat()[:19]
    assert listed[0]["expires_at"][:19] == (NOW + timedelta(days=30)).isoformat()[:19]
    assert secret not in run("--as", "bob", "tokens", "list").output
    with sqlite3.connect(tmp_path / "pulsecheck.db") as plain:  # every row of every table, as SQL text
        dump = "\n".join(plain.iterdump())
    assert secret not in dump and secret[4:] not in dump
    assert hashlib.sha256(secret.encode()).hexdigest() in dump
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        assert client.get("/api/v1/inbox").status_code == 200


def test_read_is_the_default_scope(team: Factory, run: Any, app: Any) -> None:
    _, secret = create(run, "bob", "script")
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        assert client.get("/api/v1/reviews").status_code == 200
        assert client.post("/api/v1/escalations/1/ack").status_code == 403


def test_own_tokens_only_and_any_for_an_admin(team: Factory, run: Any, os_login_admin: str, app: Any) -> None:
    bobs, secret = create(run, "bob", "laptop")
    create(run, "maria", "phone")
    assert [t["user"] for t in as_json(run("--as", "maria", "tokens", "list", "--json"))] == ["maria"]
    assert {t["user"] for t in as_json(run("tokens", "list", "--json"))} == {"bob", "maria"}  # the admin
    refused = error(run("--as", "maria", "tokens", "revoke", str(bobs)), 1)
    assert "maria cannot manage the API tokens of bob" in refused
    error(run("--as", "maria", "tokens", "list", "--user", "bob"), 1)
    error(run("--as", "maria", "tokens", "create", "x", "--user", "bob"), 1)
    assert ok(run("--as", "bob", "tokens", "revoke", str(bobs))) == f"token {bobs} revoked: laptop\n"
    assert as_json(run("--as", "bob", "tokens", "list", "--json"))[0]["state"] == "revoked"
    assert "already revoked" in error(run("tokens", "revoke", str(bobs)), 1)
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        assert client.get("/api/v1/inbox").status_code == 401


def test_bad_input_is_exit_2(team: Factory, run: Any) -> None:
    assert "--expires" in error(run("--as", "bob", "tokens", "create", "x", "--expires", "0"), 2)
    assert "NAME" in error(run("--as", "bob", "tokens", "create", " "), 2)
    assert "unknown token 99" in error(run("--as", "bob", "tokens", "revoke", "99"), 2)


def test_token_changes_join_the_audit_chain(team: Factory, run: Any, database: Database) -> None:
    token_id, _ = create(run, "bob", "laptop")
    ok(run("--as", "bob", "tokens", "revoke", str(token_id)))
    with database.transaction() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.kind == "api_token")).all()
    assert [e.record_id for e in entries] == [token_id, token_id]  # created, then revoked
    assert "ok" in run("audit", "verify").output.lower()
