"""Who is acting, on SQLite: the OS login authenticates, `--as` is an admin's, and each attack the issue measured
is refused (exit 1, one line, nothing changed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text

from pulsecheck.app import os_login
from pulsecheck.cli import cli
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import AuditEntry, Review, ReviewEvent, User
from pulsecheck.workflow.users import add_user
from tests.conftest import NOW, Factory

Run = Callable[..., Result]
LOGIN = os_login()


@pytest.fixture
def pulsecheck(db_url: str, database: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Run:
    """The CLI against the test database, as the OS login, with no admin made for it (unlike `run`)."""
    monkeypatch.setenv("PULSECHECK_DATABASE_URL", db_url)
    monkeypatch.setenv("PULSECHECK_NOW", NOW.isoformat())
    monkeypatch.delenv("PULSECHECK_USER", raising=False)
    monkeypatch.delenv("PULSECHECK_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


def login_as(database: Database, name: str) -> None:
    """From now on the OS login running the tests is user `name`."""
    with database.transaction() as session:
        for user in session.scalars(select(User).where(User.login == LOGIN)):
            user.login = None
        session.flush()
        session.scalars(select(User).where(User.name == name)).one().login = LOGIN


def refused(result: Result) -> str:
    assert (result.exit_code, result.stdout) == (1, ""), (result.exit_code, result.output)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    return str(result.stderr.strip())


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.output)
    return str(result.stdout)


def users(database: Database) -> dict[str, tuple[str, str | None, str | None]]:
    with database.transaction() as session:
        return {u.name: (u.roles, u.email, u.webhook) for u in session.scalars(select(User))}


@pytest.fixture
def team(factory: Factory, database: Database) -> Factory:
    """maria and diana (managers), bob (reviewer, reporting to maria), ann (admin), ACME owned by bob; the OS
    login is bob's."""
    factory.team()
    factory.user("diana", "manager", email="diana@example.com")
    factory.user("ann", "admin")
    login_as(database, "bob")
    return factory


# --- bootstrap and logins ------------------------------------------------------------------------------------


def test_init_makes_the_current_login_the_first_admin_and_only_once(pulsecheck: Run, database: Database) -> None:
    said = ok(pulsecheck("init", "--admin", "boss"))
    assert said.splitlines()[1] == f"user boss: admin (login {LOGIN})"
    assert ok(pulsecheck("users", "add", "carol", "--role", "reviewer")) == "user carol: reviewer\n"
    assert ok(pulsecheck("init")).startswith("database ready")  # again: nothing more
    assert refused(pulsecheck("init", "--admin", "mallory")) == (
        "error: --admin mallory: users exist already; an admin adds admins with `users add`"
    )
    assert sorted(users(database)) == ["boss", "carol"]


def test_an_unknown_login_is_told_how_to_get_added(pulsecheck: Run, factory: Factory) -> None:
    assert refused(pulsecheck("review", "list")) == (
        "error: no users yet: run `pulsecheck init` (the current login becomes the first admin)"
    )
    factory.team()
    assert refused(pulsecheck("review", "list")) == (
        f"error: login {LOGIN!r} is not a pulsecheck user: an admin runs `pulsecheck users add NAME --login {LOGIN}`"
    )


def test_a_login_maps_to_its_user(pulsecheck: Run, team: Factory) -> None:
    ok(pulsecheck("review", "new", "ACME"))  # no --as: the OS login is bob's
    assert json.loads(ok(pulsecheck("review", "list", "--mine", "--json")))["items"][0]["reviewer"] == "bob"


def test_a_login_belongs_to_one_user(pulsecheck: Run, team: Factory, database: Database) -> None:
    login_as(database, "ann")
    result = pulsecheck("users", "add", "diana", "--login", LOGIN)
    assert result.exit_code == 2 and f"--login {LOGIN!r}: already the login of user 'ann'" in result.stderr


# --- the measured attacks ---------------------------------------------------------------------------------------


def test_users_add_as_nobody_is_refused(pulsecheck: Run, team: Factory, database: Database,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    before = users(database)
    monkeypatch.setenv("PULSECHECK_USER", "nobody")
    assert refused(pulsecheck("users", "add", "eve", "--role", "admin")) == (
        "error: --as nobody: only an admin may act as another user, and bob is not one"
    )
    monkeypatch.delenv("PULSECHECK_USER")
    assert refused(pulsecheck("users", "add", "eve", "--role", "admin")) == (
        "error: users add eve: only an admin may manage, not bob"
    )
    assert users(database) == before


def test_as_by_a_non_admin_is_refused(pulsecheck: Run, team: Factory) -> None:
    pulsecheck("review", "new", "ACME")
    assert refused(pulsecheck("--as", "maria", "review", "show", "1")) == (
        "error: --as maria: only an admin may act as another user, and bob is not one"
    )


def test_a_reviewer_cannot_promote_himself_nor_rewrite_a_managers_email_or_webhook(
    pulsecheck: Run, team: Factory, database: Database
) -> None:
    before = users(database)
    for args in (
        ("users", "add", "bob", "--role", "manager"),
        ("users", "add", "bob", "--role", "admin"),
        ("users", "add", "maria", "--email", "bob@evil.example"),
        ("users", "add", "maria", "--webhook", "https://evil.example/steal"),
        ("users", "add", "bob", "--manager", "diana"),
        ("users", "add", "bob", "--login", "someone-else"),
    ):
        assert refused(pulsecheck(*args)).startswith(f"error: users add {args[2]}: only "), args
    assert users(database) == before


def test_a_user_sets_their_own_email_and_their_webhook_only_to_an_allowed_host(
    pulsecheck: Run, team: Factory, database: Database, tmp_path: Path
) -> None:
    assert ok(pulsecheck("users", "add", "bob", "--email", "bob@new.example")) == "user bob: reviewer\n"
    assert refused(pulsecheck("users", "add", "bob", "--webhook", "https://evil.example/x")) == (
        "error: --webhook: host 'evil.example' is not in [notifications.webhook] allowed_hosts (none); "
        "an admin sets other webhooks"
    )
    config = tmp_path / "pulsecheck.toml"
    config.write_text('[notifications.webhook]\nallowed_hosts = ["hooks.example.com"]\n', encoding="utf-8")
    ok(pulsecheck("--config", str(config), "users", "add", "bob", "--webhook", "https://hooks.example.com/bob"))
    assert users(database)["bob"][1:] == ("bob@new.example", "https://hooks.example.com/bob")


def test_users_import_needs_an_admin(pulsecheck: Run, team: Factory, tmp_path: Path, database: Database) -> None:
    path = tmp_path / "team.csv"
    path.write_text("name,roles\nbob,admin\n", encoding="utf-8")
    assert refused(pulsecheck("users", "import", str(path))) == "error: users import: only an admin may manage, not bob"
    login_as(database, "ann")
    assert ok(pulsecheck("users", "import", str(path))) == f"{path}: 0 created, 1 updated\n"


def submitted_review(pulsecheck: Run, team: Factory) -> None:
    ok(pulsecheck("review", "new", "ACME"))  # approver: bob's manager, maria
    team.complete(1)
    ok(pulsecheck("review", "submit", "1"))


def test_a_manager_cannot_approve_a_review_assigned_to_another(pulsecheck: Run, team: Factory,
                                                               database: Database) -> None:
    submitted_review(pulsecheck, team)
    login_as(database, "diana")
    assert refused(pulsecheck("review", "approve", "1", "--comment", "fine")) == (
        "error: cannot approve: only the assigned approver (maria) with the manager or admin role may approve, "
        "not diana"
    )
    assert refused(pulsecheck("review", "reassign", "1", "--approver", "diana", "--comment", "mine now")) == (
        "error: cannot reassign: only the reviewer's manager with the manager role or an admin may reassign, "
        "not diana"
    )
    login_as(database, "maria")
    assert "--approver: bob is also the reviewer (four-eyes)" in pulsecheck(
        "review", "reassign", "1", "--approver", "bob", "--comment", "x").stderr
    assert ok(pulsecheck("review", "reassign", "1", "--approver", "diana", "--comment", "on leave")) == (
        "review 1: approver diana\n"
    )
    login_as(database, "diana")
    assert ok(pulsecheck("review", "approve", "1", "--comment", "fine")) == "review 1: approve -> approved\n"
    with database.transaction() as session:
        events = [(e.event, e.actor, e.to_state, e.comment) for e in session.scalars(select(ReviewEvent))]
        assert ("reassign", "maria", "submitted", "approver maria -> diana: on leave") in events
        assert session.get(Review, 1).manager_signed_by == "diana"  # type: ignore[union-attr]


def test_the_reviewer_cannot_change_an_approved_review_nor_close_a_tampered_one(
    pulsecheck: Run, team: Factory, database: Database
) -> None:
    submitted_review(pulsecheck, team)
    login_as(database, "maria")
    ok(pulsecheck("review", "approve", "1", "--comment", "fine"))
    login_as(database, "bob")
    for args in (("review", "set", "1", "goal_summary", "Only 200 seats"),
                 ("review", "risk", "add", "1", "Budget freeze"),
                 ("review", "action", "add", "1", "Call", "--risk", "1", "--owner", "bob", "--due", "2026-12-20")):
        assert refused(pulsecheck(*args)) == (
            "error: review 1 is approved and frozen: reopen it to change it (signatures are cleared)"
        )
    with database.transaction() as session:  # behind the CLI's back
        session.execute(text("UPDATE reviews SET goal_summary = 'Only 200 seats' WHERE id = 1"))
    assert refused(pulsecheck("review", "close", "1")) == (
        "error: cannot close: the reviewer's signature does not verify (see `review verify`); reopen the review"
    )
    with database.transaction() as session:
        session.execute(text("UPDATE reviews SET employee_digest = NULL, manager_digest = NULL WHERE id = 1"))
    assert "signature does not verify" in refused(pulsecheck("review", "close", "1"))
    login_as(database, "maria")
    ok(pulsecheck("review", "reopen", "1", "--comment", "tampered: redo"))
    with database.transaction() as session:
        assert session.get(Review, 1).state == "draft"  # type: ignore[union-attr]


def test_an_admin_acts_for_a_user_and_the_chain_records_both(pulsecheck: Run, team: Factory,
                                                             database: Database) -> None:
    login_as(database, "ann")
    ok(pulsecheck("--as", "bob", "review", "new", "ACME"))
    assert "unknown user 'ghost'" in refused(pulsecheck("--as", "ghost", "review", "list"))
    with database.transaction() as session:
        actors = {e.actor for e in session.scalars(select(AuditEntry).where(AuditEntry.kind == "review_event"))}
        event = session.scalars(select(ReviewEvent)).one()
    assert actors == {"ann as bob"}
    assert event.actor == "bob"


def test_operations_need_ops_or_an_admin(pulsecheck: Run, team: Factory) -> None:
    assert refused(pulsecheck("evaluate")) == "error: only an ops, an admin or the scheduler may evaluate, not bob"
    assert refused(pulsecheck("scheduler", "run", "--once")) == "error: only an ops or an admin may run, not bob"
    assert refused(pulsecheck("outbox", "retry", "1")) == "error: only an ops or an admin may retry, not bob"


def test_the_factory_admin_path_still_adds_users_without_an_actor(database: Database) -> None:
    # Services called directly (the demo, scripts) pass no actor: nothing to authenticate there.
    with database.transaction() as session:
        assert add_user(session, "carol", ["reviewer"], NOW).name == "carol"

