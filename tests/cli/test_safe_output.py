"""Safe output as a user meets it: data with escape sequences never drives the terminal, Markdown exports keep
data as text, a bad --db URL never shows its password, and -o/--html replace only a regular file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from tests.conftest import Factory

ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[31m\x9b1m\x1b]8;;https://evil.example\x1b\\"
HOSTILE_NAME = f"Evil{ESCAPES} Corp"
CONTROLS = [chr(c) for c in range(0x20) if chr(c) not in "\n\t"] + [chr(c) for c in range(0x7F, 0xA0)]


def ok(result: Any) -> str:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return str(result.stdout)


def error(result: Any, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(("error: ", "Error: ")), result.stderr
    return lines[0]


def no_controls(text: str) -> bool:
    return not any(c in text for c in CONTROLS)


@pytest.fixture
def hostile(factory: Factory) -> int:
    """The team, an account whose name carries terminal escapes and HTML, and a filled review of it."""
    factory.team()
    factory.account("EVIL", owner="bob", manager="maria", name=HOSTILE_NAME + " <script>alert(1)</script>")
    review_id = factory.review("EVIL")
    factory.complete(review_id)
    factory.fire(review_id, "submit", "bob", comment=f"submitted by {HOSTILE_NAME}")
    return review_id


@pytest.mark.parametrize(
    "args",
    [("accounts", "list"), ("accounts", "show", "EVIL"), ("review", "show", "1"), ("review", "history", "1"),
     ("review", "export", "1")],
)
def test_data_reaches_the_terminal_without_control_characters(run: Any, hostile: int, args: tuple[str, ...]) -> None:
    out = ok(run(*args))
    assert "Evil" in out and "Corp" in out
    assert no_controls(out), repr(out)


def test_json_output_escapes_control_characters_and_keeps_the_value(run: Any, hostile: int) -> None:
    out = ok(run("accounts", "show", "EVIL", "--json"))
    assert no_controls(out)
    assert "\\u009b" in out and "\\u001b" in out
    assert json.loads(out)["name"] == HOSTILE_NAME + " <script>alert(1)</script>"


def test_a_markdown_export_keeps_hostile_data_as_text(run: Any, hostile: int, database: Any, tmp_path: Path) -> None:
    from sqlalchemy import update

    from pulsecheck.storage.models import Review

    with database.transaction() as session:  # written straight into the database: the export is what is tested
        session.execute(update(Review).values(
            goal_summary="# Owned\n<img src=x onerror=alert(1)>\n[click](javascript:alert(1))",
            manager_comments="| forged | row |\n```",
        ))
    out = tmp_path / "review.md"
    ok(run("review", "export", "1", "-o", str(out)))
    text = out.read_text()
    assert "<script" not in text and "<img" not in text
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert "<script" not in html and "<img" not in html and "<a " not in html  # no tag, no link came from data
    assert "<h1>Owned" not in html and "<pre" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the name, shown as the text it is
    assert "# Owned" in html and "| forged | row |" in html


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bob:s3cr3t-pw@db.example.com:notaport/pulse",
        "postgresql://bob:s3cr3t-pw@[::1/pulse",
        "nosuchdialect://bob:s3cr3t-pw@db.example.com/pulse",
        "bob:s3cr3t-pw@db.example.com",
        "postgresql://bob:s3cr3t-pw@x@db.example.com:port/pulse",
    ],
)
def test_a_malformed_db_url_never_shows_its_password(run: Any, url: str) -> None:
    result = run("--db", url, "users", "list")
    line = error(result)
    assert "s3cr3t" not in result.stderr + result.stdout
    assert "***" in line and "bob" in line  # still says which URL, user included


def test_config_show_hides_the_password_of_a_malformed_url(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSECHECK_DATABASE_URL", "postgresql://bob:s3cr3t-pw@db.example.com:notaport/pulse")
    result = run("config", "show")
    assert "s3cr3t" not in result.stdout + result.stderr
    assert "bob:***@db.example.com" in result.stdout


# --- -o and --html replace a regular file only ---------------------------------------------------------------


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def symlink(path: Path) -> Path:
    target = path.parent / "elsewhere.txt"
    target.write_text("precious\n")
    path.symlink_to(target)
    return path


def directory(path: Path) -> Path:
    path.mkdir()
    (path / "inside.txt").write_text("kept\n")
    return path


def snapshot(path: Path) -> tuple[int, str]:
    """The kind of file at `path` and what it holds (a symlink's target's text; a directory's listing)."""
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        return mode, path.read_text()
    if stat.S_ISDIR(mode):
        return mode, ",".join(sorted(p.name for p in path.iterdir()))
    return mode, ""


@pytest.mark.parametrize("make", [fifo, symlink, directory], ids=["fifo", "symlink", "directory"])
@pytest.mark.parametrize(
    "command", [("report", "portfolio", "--html"), ("review", "export", "1", "-o")], ids=["html", "export"]
)
def test_an_output_that_is_not_a_regular_file_is_refused_and_untouched(
    run: Any, hostile: int, tmp_path: Path, make: Any, command: tuple[str, ...]
) -> None:
    where = tmp_path / "exports"
    where.mkdir()
    path = make(where / "out")
    before = snapshot(path)
    result = run(*command, str(path))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert str(path) in result.stderr and "Traceback" not in result.stderr
    assert snapshot(path) == before
    assert sorted(p.name for p in where.iterdir()) == sorted(["out"] + (["elsewhere.txt"] if make is symlink else []))


@pytest.mark.parametrize("command", [("report", "portfolio", "--html"), ("review", "export", "1", "-o")])
def test_a_device_is_refused(run: Any, hostile: int, command: tuple[str, ...]) -> None:
    result = run(*command, os.devnull)
    assert result.exit_code == 2 and "not a regular file" in result.stderr, result.stderr
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


@pytest.mark.parametrize("command", [("report", "portfolio", "--html"), ("review", "export", "1", "-o")])
def test_a_regular_file_is_replaced_whole(run: Any, hostile: int, tmp_path: Path, command: tuple[str, ...]) -> None:
    where = tmp_path / "exports"
    where.mkdir()
    path = where / "out"
    path.write_text("old\n")
    ok(run(*command, str(path)))
    assert path.read_text().startswith(("<!DOCTYPE html>", "# Health review 1")) and stat.S_ISREG(path.lstat().st_mode)
    assert [p.name for p in where.iterdir()] == ["out"]  # no temporary file left behind
