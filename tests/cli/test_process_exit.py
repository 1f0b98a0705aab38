"""The console script ends without the interpreter's teardown once a command is done (issue 17, cold start):
what a normal exit finishes is still finished. Its output arrives whole, its exit status is the command's, and
its databases are closed: SQLite folds the write-ahead log back into the file, so a copy of the file alone holds
every commit the command made."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import Factory

PULSECHECK = Path(sys.executable).with_name("pulsecheck")


def pulsecheck(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PULSECHECK_DATABASE_URL": db_url}
    for name in ("PULSECHECK_USER", "PULSECHECK_CONFIG"):
        env.pop(name, None)
    return subprocess.run([str(PULSECHECK), *args], capture_output=True, text=True, env=env, timeout=120,
                          check=False)


def test_a_commit_is_in_the_file_alone_once_the_command_ends(db_url: str, os_login_admin: str, factory: Factory,
                                                             tmp_path: Path) -> None:
    factory.team()
    factory.database.dispose()  # this process holds no connection: the command's is the last one
    opened = pulsecheck(db_url, "review", "new", "ACME", "--as", "bob")
    assert opened.returncode == 0, opened.stderr
    path = tmp_path / "pulsecheck.db"
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0  # folded back and closed
    copy = tmp_path / "copy.db"
    shutil.copyfile(path, copy)  # the file alone, as a backup that forgets the -wal file would take it
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT count(*) FROM reviews").fetchone() == (1,)
        assert conn.execute("SELECT event FROM review_events").fetchall() == [("open",)]


def test_a_long_listing_arrives_whole_through_a_pipe(db_url: str, os_login_admin: str, factory: Factory) -> None:
    factory.team()
    for number in range(60):
        factory.account(f"ACC{number:03}")
        factory.review(f"ACC{number:03}")
    listed = pulsecheck(db_url, "review", "list", "--json", "--limit", "500")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert sorted(item["account"] for item in items) == [f"ACC{number:03}" for number in range(60)]


def test_the_exit_status_and_the_error_line_are_the_commands(db_url: str, os_login_admin: str,
                                                             factory: Factory) -> None:
    factory.team()
    missing = pulsecheck(db_url, "review", "show", "42")
    assert (missing.returncode, missing.stdout, missing.stderr) == (2, "", "error: unknown review 42\n")
    review = factory.review()
    refused = pulsecheck(db_url, "review", "approve", str(review), "--as", "bob")  # a draft is not approved
    assert refused.returncode == 1 and refused.stderr.startswith("error: ")
