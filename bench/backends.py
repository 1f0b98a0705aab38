"""CPU seconds the PostgreSQL server spent serving one engine's connections: each connection's backend process,
read from /proc when the connection closes (the bench's server runs on this host). Other databases' backends on
the same server are not counted, so the figure is this process's share of the server's work under any load."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

TICK = os.sysconf("SC_CLK_TCK")


def _ticks(pid: int) -> int | None:
    """utime + stime of a process, in clock ticks; None once it is gone (or not on this host)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


class BackendCpu:
    """The server CPU of an engine's PostgreSQL connections (0 on other databases)."""

    def __init__(self, engine: Engine) -> None:
        self.pids: dict[int, int] = {}  # backend pid -> its ticks when last read
        self.closed = 0
        if engine.dialect.name != "postgresql":
            return
        event.listen(engine, "connect", self._connect)
        event.listen(engine, "close", self._close)
        event.listen(engine, "close_detached", self._close)

    def _connect(self, dbapi_connection: Any, _record: Any) -> None:
        self.pids[dbapi_connection.info.backend_pid] = 0

    def _close(self, dbapi_connection: Any, *_args: Any) -> None:
        pid = dbapi_connection.info.backend_pid
        if pid in self.pids:
            self.closed += _ticks(pid) or self.pids[pid]
            del self.pids[pid]

    def seconds(self) -> float:
        """CPU seconds of the closed connections' backends and of the open ones so far."""
        live = 0
        for pid in self.pids:
            self.pids[pid] = _ticks(pid) or self.pids[pid]
            live += self.pids[pid]
        return (self.closed + live) / TICK
