"""Outbox dispatch: notifications per second delivered to the file channel from N pending rows on SQLite.

Each row is claimed, sent and its outcome committed on its own, as in production (the file channel fsyncs
every line). A second run sends the same rows to the `log` channel at a disabled level, which leaves the
dispatcher's own cost (claims and commits) without the channel's disk I/O.
The clock is fixed for both the rows and the dispatch. Floor: sqlite3 marking each row sent in a transaction
of its own (one UPDATE and a commit per row, as the dispatcher commits each outcome), same file, same run.
Run: .venv/bin/python bench/outbox.py [N_ROWS]   (default 20000)
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import report, size_arg

from pulsecheck.config import load_settings
from pulsecheck.notifications.dispatch import dispatch
from pulsecheck.notifications.render import render
from pulsecheck.storage.db import SQLITE_PRAGMAS, Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Notification

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def run(root: Path, n: int, channel: str, settings_toml: str) -> float:
    """Seconds to dispatch `n` pending rows of `channel` in one pass (a fresh database each time)."""
    database = Database(f"sqlite:///{root / f'bench-{channel}.db'}")
    upgrade(database.engine)
    context = {"account_name": "Acme Corp", "account_id": "ACME", "review_id": 12, "actor": "bob"}
    subject, body = render("review_submitted", dict(context, recipient_name="maria"))
    rows = [
        {
            "dedupe_key": f"review:{i}:submitted:maria:{channel}",
            "kind": "review_submitted",
            "channel": channel,
            "recipient": "maria",
            "subject": subject,
            "body": body,
            "payload": {"email": "maria@example.com", "webhook": None, "context": context},
            "status": "pending",
            "attempts": 0,
            "created_at": NOW,
            "next_attempt_at": NOW,
        }
        for i in range(n)
    ]
    with database.transaction() as session:
        session.execute(Notification.__table__.insert(), rows)
    config = root / f"{channel}.toml"
    config.write_text(settings_toml, encoding="utf-8")
    settings = load_settings(db=database.url, config=str(config), env={})
    started = time.perf_counter()
    report = dispatch(database, settings, NOW)
    elapsed = time.perf_counter() - started
    assert report.sent == n, (report.sent, n)
    database.dispose()
    return elapsed


def floor(path: Path) -> float:
    """Rows per second marked sent one transaction each (sqlite3, WAL as the product sets it)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:  # as the application's connections
        conn.execute(pragma)
    ids = [row[0] for row in conn.execute("SELECT id FROM notifications")]
    started = time.perf_counter()
    for row_id in ids:
        conn.execute("BEGIN")
        conn.execute("UPDATE notifications SET status = 'pending', attempts = attempts + 1 WHERE id = ?", (row_id,))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(ids) / elapsed


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        out = root / "outbox.jsonl"
        file_seconds = run(root, n, "file", f'[notifications.file]\npath = "{out}"\n')
        assert len(out.read_text(encoding="utf-8").splitlines()) == n
        log_seconds = run(root, n, "log", '[notifications.log]\nlevel = "debug"\n')
        rate_floor = floor(root / "bench-log.db")
    print(f"{n} pending notifications on SQLite, one pass, each row claimed and committed on its own")
    report("outbox dispatch, file channel (fsync per line)", n / file_seconds, "/s", rate_floor, "-", higher=True,
           floor_label="sqlite3 UPDATE+COMMIT per row")
    report("outbox dispatch, log channel off (dispatcher alone)", n / log_seconds, "/s", rate_floor, "-",
           higher=True, floor_label="sqlite3 UPDATE+COMMIT per row")


if __name__ == "__main__":
    main(size_arg(20000))
