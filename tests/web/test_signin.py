"""Signing in to the web app: passwords, sessions, CSRF, rate limits, headers, set-password links, proxies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from pulsecheck.config import load_settings
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import AuditEntry
from pulsecheck.web.app import create_app
from pulsecheck.workflow.signin import SIGNIN_REFUSED, create_invite
from tests.conftest import Factory
from tests.web.conftest import PASSWORD, Client, Clock, csrf_of, post


def attempt(client: Any, name: str, password: str) -> Any:
    return client.post("/signin", data={"name": name, "password": password, "csrf": csrf_of(client), "next": "/"})


def test_pages_need_a_signed_in_user(team: Factory, client: Client) -> None:
    anonymous = client()
    for path in ("/", "/reviews/1", "/accounts/ACME", "/escalations", "/portfolio", "/cycles"):
        response = anonymous.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/signin")


def test_sign_in_lands_on_the_inbox_as_that_user(team: Factory, client: Client) -> None:
    bob = client("bob")
    inbox = bob.get("/")
    assert inbox.status_code == 200
    assert "Inbox of bob" in inbox.text


def test_a_wrong_password_and_an_unknown_name_read_the_same(team: Factory, client: Client) -> None:
    wrong = attempt(client(), "bob", "not the password")
    unknown = attempt(client(), "nobody-here", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert SIGNIN_REFUSED in wrong.text and SIGNIN_REFUSED in unknown.text


def test_a_user_without_a_password_cannot_sign_in(team: Factory, client: Client) -> None:
    team.user("nopass", "reviewer")
    assert attempt(client(), "nopass", "").status_code == 401


def test_sign_in_without_the_csrf_token_is_refused(team: Factory, client: Client) -> None:
    anonymous = client()
    response = anonymous.post("/signin", data={"name": "bob", "password": PASSWORD})
    assert response.status_code == 403
    assert "CSRF" in response.text


def test_every_form_post_without_the_token_is_refused(team: Factory, client: Client) -> None:
    review = team.review()
    bob = client("bob")
    for path in (f"/reviews/{review}/save", f"/reviews/{review}/submit", "/escalations/ack", "/signout"):
        assert bob.post(path, data={"version": "1"}).status_code == 403, path
        assert bob.post(path, data={"version": "1", "csrf": "forged"}).status_code == 403, path


def test_too_many_failures_lock_the_name_even_with_the_right_password(team: Factory, client: Client) -> None:
    for _ in range(5):  # [web] max_failures_per_user
        assert attempt(client(), "bob", "guess").status_code == 401
    locked = attempt(client(), "bob", PASSWORD)
    assert locked.status_code == 401 and SIGNIN_REFUSED in locked.text
    assert attempt(client(), "maria", PASSWORD).status_code == 303  # others are not locked


def test_the_lock_lifts_after_the_window(team: Factory, client: Client, clock: Clock) -> None:
    for _ in range(5):
        attempt(client(), "bob", "guess")
    clock.advance(timedelta(minutes=16))  # [web] failure_window 15m
    assert attempt(client(), "bob", PASSWORD).status_code == 303


def test_an_idle_session_expires(team: Factory, client: Client, clock: Clock) -> None:
    bob = client("bob")
    clock.advance(timedelta(hours=7))
    assert bob.get("/").status_code == 200  # used within [web] session_idle (8h): still signed in...
    clock.advance(timedelta(hours=7))
    assert bob.get("/").status_code == 200  # ...and the idle time counts from the last use
    clock.advance(timedelta(hours=8, seconds=1))
    response = bob.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/signin?expired=1"
    assert "Your session expired" in bob.get(response.headers["location"]).text


def test_sign_out_ends_the_session(team: Factory, client: Client) -> None:
    bob = client("bob")
    assert post(bob, "/signout", page="/").status_code == 303
    assert bob.get("/").status_code == 303


def test_a_tampered_cookie_is_no_session(team: Factory, client: Client) -> None:
    bob = client("bob")
    cookie = bob.cookies["pulsecheck_session"]
    bob.cookies.clear()
    bob.cookies.set("pulsecheck_session", cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB"))
    assert bob.get("/").status_code == 303


def test_security_headers_and_cookie_flags(team: Factory, client: Client) -> None:
    response = client().get("/signin")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert "<script" not in response.text


def test_cookies_are_secure_behind_https(database: Database, clock: Clock, db_url: str, tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    config = tmp_path / "web.toml"
    config.write_text('[web]\nbase_url = "https://pulse.example.com"\n')
    settings = load_settings(env={"PULSECHECK_DATABASE_URL": db_url}, config=str(config))
    with TestClient(create_app(settings, database, clock)) as https_client:
        assert "secure" in https_client.get("/signin").headers["set-cookie"].lower()


def test_a_set_password_link_works_once(team: Factory, client: Client, database: Database, now: Any) -> None:
    team.user("newbie", "reviewer")
    with database.transaction() as session:
        token = create_invite(session, _admin(session), "newbie", now, timedelta(days=1))
    visitor = client()
    form = visitor.get(f"/set-password/{token}")
    assert form.status_code == 200 and "newbie" in form.text
    done = post(visitor, f"/set-password/{token}", {"password": "a long new password", "again": "a long new password"},
                page=f"/set-password/{token}")
    assert done.status_code == 303
    assert "Inbox of newbie" in visitor.get("/").text
    again = client().get(f"/set-password/{token}")
    assert again.status_code == 403 and "not valid" in again.text
    assert attempt(client(), "newbie", "a long new password").status_code == 303


def test_a_set_password_link_expires(team: Factory, client: Client, database: Database, now: Any,
                                     clock: Clock) -> None:
    with database.transaction() as session:
        token = create_invite(session, _admin(session), "bob", now, timedelta(days=1))
    clock.advance(timedelta(days=1, seconds=1))
    assert client().get(f"/set-password/{token}").status_code == 403


def _admin(session: Any) -> Any:
    from pulsecheck.storage.models import User

    return User(name="root", roles="admin")


def test_the_audit_chain_says_via_web(team: Factory, client: Client, database: Database) -> None:
    from tests.web.conftest import version_of

    review = team.review()
    team.complete(review)
    bob = client("bob")
    submitted = post(bob, f"/reviews/{review}/submit", {"version": version_of(bob, f"/reviews/{review}")},
                     page=f"/reviews/{review}")
    assert submitted.status_code == 303
    with database.transaction() as session:
        actors = list(session.scalars(select(AuditEntry.actor).order_by(AuditEntry.seq)))
    assert actors[-1] is not None and actors[-1].startswith("bob via web session ")
    from pulsecheck.workflow.audit import verify_chain

    with database.transaction() as session:
        report = verify_chain(session)
    assert report.ok, report.problems


@pytest.fixture
def proxied(database: Database, clock: Clock, db_url: str, tmp_path: Any) -> Any:
    config = tmp_path / "proxy.toml"
    config.write_text('[web]\ntrusted_proxy_header = "X-Remote-User"\ntrusted_proxies = ["10.1.0.0/16"]\n')
    return create_app(load_settings(env={"PULSECHECK_DATABASE_URL": db_url}, config=str(config)), database, clock)


def test_a_proxy_header_counts_only_from_a_trusted_proxy(team: Factory, proxied: Any) -> None:
    from fastapi.testclient import TestClient

    with TestClient(proxied, follow_redirects=False, client=("10.1.2.3", 5000)) as trusted:
        response = trusted.get("/", headers={"X-Remote-User": "maria"})
        assert response.status_code == 200 and "Inbox of maria" in response.text
    with TestClient(proxied, follow_redirects=False, client=("192.0.2.9", 5000)) as stranger:
        assert stranger.get("/", headers={"X-Remote-User": "maria"}).status_code == 303


def test_behind_a_trusted_proxy_addresses_are_counted_apart(team: Factory, proxied: Any) -> None:
    from fastapi.testclient import TestClient

    def try_from(client: TestClient, forwarded: str, name: str, password: str) -> int:
        token = csrf_of(client)
        return client.post("/signin", headers={"X-Forwarded-For": forwarded},
                           data={"name": name, "password": password, "csrf": token}).status_code

    with TestClient(proxied, follow_redirects=False, client=("10.1.2.3", 5000)) as proxy:
        for n in range(20):  # [web] max_failures_per_address, spread over names so no name is locked
            assert try_from(proxy, "198.51.100.7", f"someone{n}", "guess") == 401
        assert try_from(proxy, "198.51.100.7", "bob", PASSWORD) == 401  # that address is locked...
        assert try_from(proxy, "198.51.100.8", "bob", PASSWORD) == 303  # ...another behind the same proxy is not
