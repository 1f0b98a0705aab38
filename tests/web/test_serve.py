"""`pulsecheck serve` as a real process on a loopback port: one worker on SQLite, two on PostgreSQL sharing
sessions (the cookie secret and sign-in limits live in the database)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from pulsecheck.storage.db import Database
from tests.conftest import Factory
from tests.web.conftest import CSRF, PASSWORD, give_passwords

PULSECHECK = Path(sys.executable).with_name("pulsecheck")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(db_url: str, *args: str) -> Iterator[str]:
    """`pulsecheck serve` started, answering on its port (bounded wait), then stopped."""
    port = free_port()
    env = {**os.environ, "PULSECHECK_DATABASE_URL": db_url}
    env.pop("PULSECHECK_CONFIG", None)
    process = subprocess.Popen([str(PULSECHECK), "serve", "--port", str(port), *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # at most 60 s, under load
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode() if process.stderr else "serve exited")
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def signed_in_client(base: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    token = CSRF.search(client.get("/signin").text)
    assert token
    response = client.post("/signin", data={"name": name, "password": PASSWORD, "csrf": token.group(1), "next": "/"})
    assert response.status_code == 303, response.text
    return client


def test_serve_on_sqlite(factory: Factory, database: Database, db_url: str, now: datetime) -> None:
    factory.team()
    give_passwords(database, now, "bob")
    with serving(db_url) as base:
        page = httpx.get(f"{base}/signin")
        assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
        bob = signed_in_client(base, "bob")
        assert "Inbox of bob" in bob.get("/").text
        bob.close()


@pytest.mark.postgres
def test_two_workers_on_postgresql_share_sessions(pg_database: Database, pg_url: str, now: datetime) -> None:
    factory = Factory(pg_database, now)
    factory.team()
    give_passwords(pg_database, now, "bob")
    with serving(pg_url, "--workers", "2") as base:
        bob = signed_in_client(base, "bob")
        for _ in range(12):  # whichever worker answers knows the session
            assert "Inbox of bob" in bob.get("/").text
        bob.close()
