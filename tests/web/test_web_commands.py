"""The CLI side of the web app: `users password`, `users invite`, `serve` refusing several SQLite workers, and a
web sign-off countersigned by the server key that `review verify` reports as server-attested."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pulsecheck.config import load_settings
from pulsecheck.storage.db import Database
from pulsecheck.web.app import create_app
from pulsecheck.workflow.signin import Limits, sign_in
from tests.conftest import Factory, error, ok
from tests.web.conftest import Clock, post, version_of
from tests.web.conftest import sign_in as web_sign_in


def signs_in(database: Database, name: str, password: str, now: Any) -> bool:
    with database.transaction() as session:
        return sign_in(session, name, password, "127.0.0.1", now, Limits()) is not None


def test_users_password_asks_twice_and_hides_it(run: Any, factory: Factory, database: Database, now: Any) -> None:
    factory.team()
    said = ok(run("users", "password", "bob", input="a fine password\na fine password\n"))
    assert "a fine password" not in said and "password of bob set" in said
    assert signs_in(database, "bob", "a fine password", now)


def test_users_password_refuses_a_mismatch_and_a_short_one(run: Any, factory: Factory) -> None:
    factory.team()
    assert run("users", "password", "bob", input="a fine password\nanother one!!\n").exit_code != 0
    assert "at least 10 characters" in error(run("users", "password", "bob", input="short\nshort\n"), 2, None)


def test_only_an_admin_sets_another_users_password(run: Any, factory: Factory, database: Database,
                                                   now: Any) -> None:
    factory.team()
    twice = "a fine password\na fine password\n"
    refused = error(run("--as", "bob", "users", "password", "maria", input=twice), 1, None)
    assert "only the user themself or an admin" in refused
    ok(run("--as", "bob", "users", "password", "bob", input="bob's own password\nbob's own password\n"))
    assert signs_in(database, "bob", "bob's own password", now)
    assert not signs_in(database, "maria", "a fine password", now)


def test_users_invite_prints_a_one_time_link(run: Any, factory: Factory) -> None:
    factory.team()
    said = ok(run("users", "invite", "bob"))
    assert re.search(r"^http://127\.0\.0\.1:8000/set-password/[\w-]{40,}$", said, re.MULTILINE)
    assert "only an admin" in error(run("--as", "bob", "users", "invite", "maria"), 1)


def test_serve_refuses_several_workers_on_sqlite(run: Any) -> None:
    assert "SQLite serves with one worker" in error(run("serve", "--workers", "2"), 2)


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")
def test_web_sign_offs_are_server_attested(run: Any, team: Factory, database: Database, clock: Clock,
                                          db_url: str, tmp_path: Path) -> None:
    key = tmp_path / "server_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "server", "-f", str(key)], check=True)
    config = tmp_path / "pulsecheck.toml"
    config.write_text(f'[signing]\nrequired = true\n[web]\nsigning_key = "{key}"\n')
    settings = load_settings(env={"PULSECHECK_DATABASE_URL": db_url}, config=str(config))
    review = team.review()
    team.complete(review)
    with TestClient(create_app(settings, database, clock), follow_redirects=False) as bob:
        web_sign_in(bob, "bob")
        path = f"/reviews/{review}"
        assert post(bob, f"{path}/submit", {"version": version_of(bob, path)}, page=path).status_code == 303
        assert "server-attested" in bob.get(path).text
    said = ok(run("--config", str(config), "review", "verify", str(review)))
    assert "submit by bob: server-attested (web)" in said
    assert said.strip().endswith("audit trail consistent")
    ok(run("--config", str(config), "audit", "verify"))  # the server key joined the chain; its signature verifies
