"""`outbox list / dispatch / retry` as a user runs them: exit codes, stdout, stderr, --json, and the installed
script in a subprocess."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select

from pulsecheck.notifications.outbox import enqueue
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import User
from tests.conftest import NOW, Factory, as_json, installed, ok, page_items

Run = Callable[..., Result]
CONTEXT = {"account_name": "Acme Corp", "account_id": "ACME", "review_id": 12, "actor": "bob"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A pulsecheck.toml: the file channel writes outbox.jsonl, email lacks its host, 2 attempts at most."""
    path = tmp_path / "pulsecheck.toml"
    path.write_text(
        '[notifications]\nretry_base = "5m"\nmax_attempts = 2\n'
        f'[notifications.file]\npath = "{tmp_path / "outbox.jsonl"}"\n'
        '[notifications.email]\nfrom = "pc@example.com"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def outbox(run: Run, config: Path, factory: Factory, database: Database, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Three file notifications (maria, bob, olga) and two email ones (maria, bob); `run` uses the config."""
    monkeypatch.setenv("PULSECHECK_CONFIG", str(config))
    factory.user("maria", "manager", email="maria@example.com")
    factory.user("bob", "reviewer", manager="maria", email="bob@example.com")
    factory.user("olga", "ops")
    with database.transaction() as session:
        users = list(session.scalars(select(User).where(User.name.in_(("maria", "bob", "olga"))).order_by(User.id)))
        enqueue(session, "review_submitted", CONTEXT, users, "review:12:submitted", "file", NOW)
        enqueue(session, "review_submitted", CONTEXT, users[:2], "review:12:submitted", "email", NOW)
    return run


def lines(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_list_shows_the_queue_newest_first(outbox: Run) -> None:
    data = page_items(outbox("outbox", "list", "--json"))
    assert [(n["id"], n["channel"], n["recipient"], n["status"]) for n in data] == [
        (5, "email", "bob", "pending"),
        (4, "email", "maria", "pending"),
        (3, "file", "olga", "pending"),
        (2, "file", "bob", "pending"),
        (1, "file", "maria", "pending"),
    ]
    assert set(data[0]) == {
        "id", "kind", "channel", "recipient", "status", "attempts", "created_at", "next_attempt_at", "sent_at",
        "last_error", "subject", "dedupe_key",
    }
    assert data[0]["next_attempt_at"] == NOW.isoformat()
    assert data[0]["subject"] == "[pulsecheck] Review #12 for Acme Corp awaits your approval"
    table = ok(outbox("outbox", "list"))
    assert "Review #12" in table and "2026-11-24 09:00" in table and "[pulsecheck]" not in table
    assert [n["id"] for n in page_items(outbox("outbox", "list", "--limit", "2", "--json"))] == [5, 4]


def test_dispatch_prints_counts_and_each_failure_and_exits_0(outbox: Run, tmp_path: Path) -> None:
    result = ok(outbox("outbox", "dispatch"))
    assert result.splitlines() == [
        "5 due: 3 sent, 0 to retry, 2 failed",
        "  email: 0 sent, 0 to retry, 2 failed",
        "  file: 3 sent, 0 to retry, 0 failed",
        "#4 email to maria: failed: channel 'email': setting 'host' is required",
        "#5 email to bob: failed: channel 'email': setting 'host' is required",
    ]
    assert [r["recipient_name"] for r in lines(tmp_path)] == ["maria", "bob", "olga"]
    again = as_json(outbox("outbox", "dispatch", "--json"))
    assert again == {"now": NOW.isoformat(), "sent": 0, "retried": 0, "failed": 0, "held": 0, "digests": 0,
                     "channels": {}, "problems": []}
    assert len(lines(tmp_path)) == 3


def test_failed_ones_are_listed_and_retry_queues_them_again(outbox: Run, config: Path, tmp_path: Path) -> None:
    ok(outbox("outbox", "dispatch"))
    failed = page_items(outbox("outbox", "list", "--failed", "--json"))
    assert [(n["id"], n["status"], n["next_attempt_at"]) for n in failed] == [(5, "failed", None), (4, "failed", None)]
    assert "setting 'host' is required" in failed[0]["last_error"]
    assert page_items(outbox("outbox", "list", "--status", "sent", "--json"))[0]["sent_at"] == NOW.isoformat()
    assert "channel 'email'" in ok(outbox("outbox", "list", "--failed"))

    retried = ok(outbox("outbox", "retry", "4", "5"))
    assert retried == "notification 4 queued again\nnotification 5 queued again\n"
    pending = page_items(outbox("outbox", "list", "--status", "pending", "--json"))
    assert [(n["id"], n["attempts"], n["next_attempt_at"]) for n in pending] == [
        (5, 0, NOW.isoformat()),
        (4, 0, NOW.isoformat()),
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["outbox", "retry", "1"], 1, "error: notification 1 is pending, not failed: only failed ones are retried\n"),
        (["outbox", "retry", "99"], 2, "error: notification 99 does not exist\n"),
        (["outbox", "retry", "x"], 2, "error: Invalid value for 'ID...': 'x' is not a valid integer.\n"),
        (["outbox", "list", "--status", "lost"], 2,
         "error: --status: expected one of pending, sent, failed, held, digested, got 'lost'\n"),
        (["outbox", "list", "--failed", "--status", "sent"], 2,
         "error: --failed and --status sent contradict each other\n"),
    ],
)
def test_bad_requests_are_one_line_errors(outbox: Run, args: list[str], code: int, message: str) -> None:
    result = outbox(*args)
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", message)


def test_retry_is_all_or_nothing(outbox: Run) -> None:
    ok(outbox("outbox", "dispatch"))
    result = outbox("outbox", "retry", "4", "1")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: notification 1 is sent, not failed: only failed ones are retried\n",
    )
    assert [n["id"] for n in page_items(outbox("outbox", "list", "--failed", "--json"))] == [5, 4]


def test_a_retryable_failure_waits_then_gives_up(
    outbox: Run, tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "outbox.jsonl").mkdir()  # the file channel cannot append: retryable
    first = ok(outbox("outbox", "dispatch"))
    assert first.startswith("5 due: 0 sent, 3 to retry, 2 failed\n")
    assert "#1 file to maria: retry at 2026-11-24 09:05: file: cannot append to" in first
    pending = page_items(outbox("outbox", "list", "--status", "pending", "--json"))
    assert {(n["attempts"], n["next_attempt_at"]) for n in pending} == {(1, (NOW + timedelta(minutes=5)).isoformat())}
    assert "cannot append to" in pending[0]["last_error"]
    monkeypatch.setenv("PULSECHECK_NOW", (NOW + timedelta(minutes=5)).isoformat())
    second = ok(outbox("outbox", "dispatch"))
    assert second.startswith("3 due: 0 sent, 0 to retry, 3 failed\n")
    assert "#1 file to maria: failed: gave up after 2 attempts: file: cannot append to" in second
    failed = page_items(outbox("outbox", "list", "--status", "failed", "--json"))
    assert [n["attempts"] for n in failed] == [0, 0, 2, 2, 2]


def test_bad_retry_setting_is_exit_2_naming_it(outbox: Run, config: Path) -> None:
    good = config.read_text()
    config.write_text("[notifications]\nmax_attempts = 0\n")
    result = outbox("outbox", "dispatch")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: {config}: [notifications] max_attempts: must be at least 1, got 0\n"
    )
    config.write_text(good)  # every command refuses bad settings now, `outbox list` too
    assert page_items(outbox("outbox", "list", "--status", "pending", "--json"))  # nothing was touched


def test_installed_script_dispatches_and_lists(tmp_path: Path, factory: Factory, database: Database,
                                               config: Path, os_login_admin: str) -> None:
    factory.user("maria", "manager", email="maria@example.com")
    with database.transaction() as session:
        users = list(session.scalars(select(User).where(User.name == "maria")))
        enqueue(session, "review_submitted", CONTEXT, users, "review:12:submitted", "file", NOW)
        enqueue(session, "review_submitted", CONTEXT, users, "review:12:submitted", "log", NOW)
    env = {"PULSECHECK_DATABASE_URL": database.url, "PULSECHECK_CONFIG": str(config), "PULSECHECK_NOW": NOW.isoformat()}

    def pulsecheck(*args: str) -> subprocess.CompletedProcess[str]:
        return installed(*args, cwd=tmp_path, env=env)

    dispatched = pulsecheck("outbox", "dispatch")
    assert (dispatched.returncode, dispatched.stdout) == (
        0,
        "2 due: 2 sent, 0 to retry, 0 failed\n  file: 1 sent, 0 to retry, 0 failed\n"
        "  log: 1 sent, 0 to retry, 0 failed\n",
    )
    # the log channel prints to stderr when the CLI dispatches
    assert dispatched.stderr.startswith("notification review_submitted to maria <maria@example.com>: [pulsecheck]")
    assert "pulsecheck review show 12" in dispatched.stderr
    assert [r["dedupe_key"] for r in lines(tmp_path)] == ["review:12:submitted:maria:file"]
    assert len(page_items(pulsecheck("outbox", "list", "--status", "sent", "--json"))) == 2
