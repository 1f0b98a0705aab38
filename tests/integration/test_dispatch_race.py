"""Dispatchers at once, on SQLite and PostgreSQL: two forced to hold claimed rows at the same moment (a barrier
in the channel, not timing), a dispatcher whose claim expired while it was stuck, and one killed mid-send."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from pulsecheck.config import load_settings
from pulsecheck.notifications.channels.base import DeliveryError
from pulsecheck.notifications.channels.file import FileChannel
from pulsecheck.notifications.dispatch import LEASE, dispatch
from pulsecheck.notifications.message import Message
from pulsecheck.storage.db import Database
from tests.conftest import NOW, Factory
from tests.integration.conftest import configure, queue, rows

BARRIER_TIMEOUT = 20.0  # seconds; only reached when the dispatchers do not overlap as they must


@pytest.fixture
def team(factory: Factory) -> Factory:
    factory.user("maria", "manager", email="maria@example.com")
    return factory


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_database(request: pytest.FixtureRequest) -> Database:
    """The test database of each kind (PostgreSQL skips when unreachable)."""
    name = "database" if request.param == "sqlite" else "pg_database"
    database: Database = request.getfixturevalue(name)
    return database


class Gate:
    """Wraps a channel's `send`: the first message each dispatcher thread sends waits until every one of the
    `parties` dispatchers holds a claimed row, so the dispatchers overlap for certain, whatever the scheduling."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=BARRIER_TIMEOUT)
        self.passed: set[int] = set()

    def around(self, send: Callable[[FileChannel, Message], None]) -> Callable[[FileChannel, Message], None]:
        def gated(channel: FileChannel, message: Message) -> None:
            if threading.get_ident() not in self.passed:
                self.passed.add(threading.get_ident())
                self.barrier.wait()  # BrokenBarrierError if the other dispatcher never gets a row of its own
            send(channel, message)

        return gated


def in_threads(*calls: Callable[[], Any]) -> list[Any]:
    """Run each call in its own thread; their results in order (an exception is re-raised here)."""
    results: list[Any] = [None] * len(calls)

    def target(index: int) -> None:
        try:
            results[index] = calls[index]()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            results[index] = exc

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=BARRIER_TIMEOUT * 3)
        assert not thread.is_alive(), "a dispatcher hung"
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def test_two_dispatchers_with_rows_in_flight_at_once_deliver_each_notification_once(
    tmp_path: Path, shared_database: Database, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both dispatchers are made to hold a claimed row at the same moment (a barrier in the channel): each
    claimed a different one, and every notification goes out exactly once."""
    database = shared_database
    Factory(database, now).user("maria", "manager", email="maria@example.com")
    count = 6
    for event in range(count):
        queue(database, "file", "maria", event=f"event:{event}")
    path = tmp_path / "outbox.jsonl"
    settings = configure(tmp_path, database, f'[notifications.file]\npath = "{path}"\n')
    gate = Gate(parties=2)
    monkeypatch.setattr(FileChannel, "send", gate.around(FileChannel.send))
    dispatchers = [Database(database.url) for _ in range(2)]  # two engines, as two processes would have
    try:
        reports = in_threads(*[partial(dispatch, d, settings, NOW) for d in dispatchers])
    finally:
        for dispatcher in dispatchers:
            dispatcher.dispose()
    assert len(gate.passed) == 2  # both were sending at once
    assert all(r.sent >= 1 for r in reports) and sum(r.sent for r in reports) == count
    assert all(r.retried == r.failed == 0 for r in reports)
    keys = sorted(json.loads(line)["dedupe_key"] for line in path.read_text(encoding="utf-8").splitlines())
    assert keys == sorted(f"event:{i}:maria:file" for i in range(count))
    assert {(r.status, r.attempts) for r in rows(database)} == {("sent", 1)}


@pytest.mark.parametrize("stale_finishes", ["first", "last"])
def test_a_dispatcher_whose_lease_ran_out_cannot_overwrite_the_row_another_one_sent(
    tmp_path: Path, database: Database, team: Factory, monkeypatch: pytest.MonkeyPatch, stale_finishes: str
) -> None:
    """SQLite: a dispatcher stuck in a channel for longer than LEASE loses its claim, and a second dispatcher
    claims the row again and sends it. Whether the stale one fails before or after the second one is done, its
    outcome must not turn the delivered row into a failed one (which `outbox retry` would send a second time)."""
    path = tmp_path / "outbox.jsonl"
    settings = configure(tmp_path, database, f'[notifications.file]\npath = "{path}"\n')
    queue(database, "file", "maria")
    real_send, calls = FileChannel.send, 0
    inside, finish = [threading.Event(), threading.Event()], [threading.Event(), threading.Event()]

    def send(channel: FileChannel, message: Message) -> None:
        nonlocal calls
        me, calls = calls, calls + 1
        inside[me].set()
        assert finish[me].wait(BARRIER_TIMEOUT)
        if me == 0:  # the stale dispatcher fails for good
            raise DeliveryError("file: the disk went away", retryable=False)
        real_send(channel, message)

    monkeypatch.setattr(FileChannel, "send", send)
    later = NOW + LEASE
    engines = [Database(database.url), Database(database.url)]
    threads = [threading.Thread(target=dispatch, args=(engine, settings, when)) for engine, when in
               zip(engines, (NOW, later), strict=True)]
    try:
        for thread, entered in zip(threads, inside, strict=True):
            thread.start()
            assert entered.wait(BARRIER_TIMEOUT)  # it claimed the row and is inside the channel
        for me in (0, 1) if stale_finishes == "first" else (1, 0):
            finish[me].set()
            threads[me].join(BARRIER_TIMEOUT)
    finally:
        for event in finish:
            event.set()
        for thread, engine in zip(threads, engines, strict=True):
            thread.join(BARRIER_TIMEOUT)
            engine.dispose()
    (row,) = rows(database)
    assert (row.status, row.attempts, row.sent_at, row.last_error) == ("sent", 2, later, None)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1
    assert dispatch(database, settings, later + timedelta(days=1)).sent == 0


KILLED_MID_SEND = """
import os, sys
from datetime import datetime
from pulsecheck.config import load_settings
from pulsecheck.notifications.channels.file import FileChannel
from pulsecheck.notifications.dispatch import dispatch
from pulsecheck.storage.db import Database

real_send, calls = FileChannel.send, []

def send(self, message):
    calls.append(message)
    if len(calls) == 3:
        os._exit(9)  # killed while sending the third: no cleanup of any kind
    real_send(self, message)

FileChannel.send = send
url, config, now = sys.argv[1:]
dispatch(Database(url), load_settings(db=url, config=config, env={}), datetime.fromisoformat(now))
"""


def test_a_dispatcher_killed_mid_send_loses_nothing(tmp_path: Path, shared_database: Database, now: datetime) -> None:
    database = shared_database
    Factory(database, now).user("maria", "manager", email="maria@example.com")
    for event in range(5):
        queue(database, "file", "maria", event=f"event:{event}")
    path = tmp_path / "outbox.jsonl"
    config = tmp_path / "pulsecheck.toml"
    config.write_text(f'[notifications.file]\npath = "{path}"\n', encoding="utf-8")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_SEND, database.url, str(config), NOW.isoformat()],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert killed.returncode == 9, killed.stderr
    statuses = [(r.status, r.attempts) for r in rows(database)]
    settings = load_settings(db=database.url, config=str(config), env={})
    if database.engine.dialect.name == "sqlite":
        # the claim counted the attempt; the row is due again when its lease runs out
        assert statuses == [("sent", 1), ("sent", 1), ("pending", 1), ("pending", 0), ("pending", 0)]
        assert dispatch(database, settings, NOW).sent == 2
        assert dispatch(database, settings, NOW + LEASE).sent == 1
    else:
        # the transaction died with the process: the row is due again at once
        assert statuses == [("sent", 1), ("sent", 1), ("pending", 0), ("pending", 0), ("pending", 0)]
        assert dispatch(database, settings, NOW).sent == 3
    keys = sorted(json.loads(line)["dedupe_key"] for line in path.read_text().splitlines())
    assert keys == [f"event:{i}:maria:file" for i in range(5)]


def test_a_deposed_leaders_dispatcher_cannot_commit_a_delivery_result(
    tmp_path: Path, shared_database: Database, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler leader's dispatch job is fenced by its epoch: deposed while a message is on its way, it
    commits no outcome over the row; the new leader's dispatcher delivers the row and records it once."""
    from pulsecheck.notifications.dispatch import DispatchReport
    from pulsecheck.scheduling.leader import Deposed, LeaderLock
    from tests.integration.test_leadership import depose

    database = shared_database
    Factory(database, now).user("maria", "manager", email="maria@example.com")
    path = tmp_path / "outbox.jsonl"
    settings = configure(tmp_path, database, f'[notifications.file]\npath = "{path}"\n')
    queue(database, "file", "maria")
    url = database.url
    old = LeaderLock(Database(url))
    assert old.acquire()
    taken: list[LeaderLock] = []
    real_send = FileChannel.send

    def send(channel: FileChannel, message: Message) -> None:
        if not taken:  # the old leader's dispatcher: another scheduler takes over while it sends
            taken.append(depose(old, url))
        real_send(channel, message)

    monkeypatch.setattr(FileChannel, "send", send)
    with pytest.raises(Deposed, match="another scheduler took over"):
        dispatch(old.database, settings, NOW, fence=old.check)
    (row,) = rows(database)
    assert row.status == "pending" and row.sent_at is None  # the deposed one recorded nothing
    new = taken[0]
    later = NOW + LEASE  # past the old claim's lease (SQLite); PostgreSQL's row lock went with its rollback
    report: DispatchReport = dispatch(new.database, settings, later, fence=new.check)
    assert report.sent == 1
    (row,) = rows(database)
    assert row.status == "sent"
    new.release()
    old.release()
    old.database.dispose()
    new.database.dispose()
