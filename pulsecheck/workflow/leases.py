"""Who holds a piece of work (an evaluation run, the scheduler's leadership), whether it is still alive, and the
heartbeat that says so.

A holder is one process: its pid, the machine and pid namespace it runs in, and a random token (two holders in
one process differ). Its row says until when it vouches for the work (`lease_until`, on the wall clock, not the
business clock: a lease is about a process being alive); a heartbeat thread pushes that time out. Another process
decides the holder is gone when the lease has run out, or at once when the holder runs on this machine, in this pid
namespace, and its pid no longer exists (or is a zombie).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

log = logging.getLogger("pulsecheck.leases")
# session.info key: this transaction only records what became of a piece of work (a run failed), so a fence
# (scheduling.leader) lets it commit even for a deposed scheduler; the work itself stays fenced.
BOOKKEEPING = "pulsecheck.bookkeeping"


def wall_clock() -> datetime:
    """The real time now (leases are about processes being alive, never about the business clock)."""
    return datetime.now(UTC)


@cache
def host_key() -> str:
    """This machine and pid namespace: `<hostname>/<boot id>/<pid namespace>`. Two containers with one hostname
    differ, and a reboot makes every pid of before meaningless."""
    parts = [socket.gethostname() or "localhost"]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8])
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:  # not Linux: the hostname alone
        pass
    return "/".join(parts)


class Holder(NamedTuple):  # not a dataclass: cheaper to make at every start-up (issue 17)
    """One process holding one piece of work."""

    pid: int
    host: str
    token: str

    @property
    def text(self) -> str:
        """As stored: `<pid>@<host>#<token>`."""
        return f"{self.pid}@{self.host}#{self.token}"

    @property
    def name(self) -> str:
        """As said to a user: `process <pid> on <hostname>`."""
        return f"process {self.pid} on {self.host.split('/', 1)[0]}"

    @classmethod
    def parse(cls, text: str | None) -> Holder | None:
        """A stored holder, or None for nothing (or something unreadable) stored."""
        if not text or "@" not in text or "#" not in text:
            return None
        pid, _, rest = text.partition("@")
        host, _, token = rest.rpartition("#")
        return cls(int(pid), host, token) if pid.isascii() and pid.isdigit() else None


def this_process() -> Holder:
    """A new holder for this process (a fresh token each time)."""
    return Holder(os.getpid(), host_key(), uuid.uuid4().hex[:16])


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this machine and is not a zombie (killed, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill()
    return stat[stat.rindex(")") + 2 :].split(" ", 1)[0] not in ("Z", "X")


def gone(stored: str | None, lease_until: datetime | None, wall: datetime) -> str | None:
    """Why the holder `stored` no longer holds its work, or None while it may still be alive."""
    holder = Holder.parse(stored)
    if holder is None:
        return "no process recorded as running it"
    if holder.host == host_key() and not pid_alive(holder.pid):
        return f"{holder.name} is gone"
    if lease_until is None:
        return f"{holder.name} holds no lease"
    if lease_until < wall:
        return f"{holder.name} has not renewed its lease (it ran out at {lease_until.isoformat(timespec='seconds')})"
    return None


class Heartbeat:
    """Calls `beat()` every `every` seconds in a daemon thread, from `start()` until `stop()`.

    A beat that fails is logged and tried again at the next one: a busy database must not end the work it vouches
    for; if the lease runs out meanwhile, the work's own commits are what notice."""

    def __init__(self, beat: Callable[[], None], every: float, name: str) -> None:
        self.beat, self.every, self.name = beat, every, name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        """Begin beating (the first beat comes after `every` seconds)."""
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and wait for a beat in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - see the class docstring
                log.warning("%s: heartbeat failed", self.name, exc_info=True)


def any_running(db: Session | Connection) -> bool:
    """Whether any evaluation run is `running` (one index probe: what every command asks before recovering runs;
    here, not beside `recover_runs`, so that the probe does not load the evaluation machinery)."""
    from sqlalchemy import select

    from pulsecheck.storage.tables import EVALUATION_RUNS as RUNS

    return db.scalar(select(RUNS.c.id).where(RUNS.c.status == "running").limit(1)) is not None
