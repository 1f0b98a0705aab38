"""The cost of one signed sign-off beside an unsigned one: a deviation accepted in its own transaction, through
the commit hooks, with and without the signer (one `ssh-keygen -Y sign` subprocess) in session.info.

The clock is fixed for both the data and the run. Floor: the unsigned sign-off, same run.
Run: .venv/bin/python bench/signing.py [N]   (default 50)
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from common import report, size_arg
from sqlalchemy import select

from pulsecheck.app import install_hooks
from pulsecheck.config import SettingsFiles, load_settings
from pulsecheck.storage.chain import SIGNER
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Deviation, User
from pulsecheck.workflow.deviations import accept
from pulsecheck.workflow.keys import KeySigner, add_key, create_key_file
from pulsecheck.workflow.users import add_user

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def accept_each(database: Database, ids: list[int], signer: KeySigner | None) -> float:
    """Milliseconds per accepted deviation, one transaction each."""
    started = time.perf_counter()
    for deviation_id in ids:
        with database.transaction() as session:
            if signer is not None:
                session.info[SIGNER] = signer
            maria = session.scalars(select(User).where(User.name == "maria")).one()
            accept(session, deviation_id, maria, "known gap", date(2027, 1, 1), NOW)
    return (time.perf_counter() - started) * 1000 / len(ids)


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        database = Database(f"sqlite:///{tmp}/bench.db")
        upgrade(database.engine)
        install_hooks(database, load_settings(env={}, files=SettingsFiles()))
        key = Path(tmp) / "maria"
        with database.transaction() as session:
            maria = add_user(session, "maria", ["manager"], NOW)
            add_key(session, maria, "maria", create_key_file(key, "maria"), NOW)
            rows = [Deviation(kind="stale", subject=str(i), detail="-", found_at=NOW, last_seen_at=NOW)
                    for i in range(2 * n)]
            session.add_all(rows)
            session.flush()
            ids = [row.id for row in rows]
        unsigned = accept_each(database, ids[:n], None)
        signed = accept_each(database, ids[n:], KeySigner(lambda: NOW, key=key))
        database.dispose()
    report(f"signed sign-off (ssh-keygen -Y sign, Ed25519; {n} each)", signed, "ms", unsigned, "-",
           floor_label="the same sign-off unsigned")


if __name__ == "__main__":
    main(size_arg(50))
