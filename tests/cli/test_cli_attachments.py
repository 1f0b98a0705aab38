"""`review attach`, `review attachments` and `review attachment get` as a user runs them: bytes round-trip exactly,
the same bytes are stored once, the size limit, frozen reviews, signatures that bind attachments, and stored bytes
changed by SQL are detected."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from pulsecheck.storage.db import Database

SCORECARD = bytes(range(256)) * 4 + b"\r\n\x00 not UTF-8: \xff\xfe"
SHA = hashlib.sha256(SCORECARD).hexdigest()


def ok(result: Any) -> str:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr == ""
    return str(result.stdout)


def error(result: Any, code: int) -> str:
    """The one `error: ...` line of a failed command (and no traceback)."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return str(lines[0])


@pytest.fixture
def review(factory: Any) -> int:
    """A complete draft review of ACME by bob (approver maria)."""
    factory.team()
    review_id = factory.review()
    factory.complete(review_id)
    return int(review_id)


@pytest.fixture
def scorecard(tmp_path: Path) -> Path:
    path = tmp_path / "scorecard.xlsx"
    path.write_bytes(SCORECARD)
    return path


def count(database: Database, table: str) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_attach_list_and_get_round_trip_byte_for_byte(review: int, scorecard: Path, run: Any, database: Database,
                                                      tmp_path: Path) -> None:
    said = ok(run("--as", "bob", "review", "attach", "1", str(scorecard), "--note", "Q4 scorecard"))
    assert said == f"review 1: attachment 1 scorecard.xlsx ({len(SCORECARD)} bytes, sha256 {SHA})\n"
    again = tmp_path / "copy-of-scorecard.bin"
    again.write_bytes(SCORECARD)
    ok(run("--as", "maria", "review", "attach", "1", str(again)))
    assert (count(database, "attachments"), count(database, "attachment_links")) == (1, 2)  # stored once

    listed = json.loads(ok(run("review", "attachments", "1", "--json")))
    assert [(a["number"], a["filename"], a["size"], a["sha256"], a["note"], a["added_by"]) for a in listed] == [
        (1, "scorecard.xlsx", len(SCORECARD), SHA, "Q4 scorecard", "bob"),
        (2, "copy-of-scorecard.bin", len(SCORECARD), SHA, None, "maria"),
    ]
    assert "scorecard.xlsx" in ok(run("review", "attachments", "1"))

    target = tmp_path / "out" / "got.xlsx"
    target.parent.mkdir()
    assert ok(run("review", "attachment", "get", "1", "1", "-o", str(target))) == f"wrote {target}\n"
    assert target.read_bytes() == SCORECARD
    piped = run("review", "attachment", "get", "1", "2")
    assert piped.exit_code == 0 and piped.stdout_bytes == SCORECARD


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--as", "bob", "review", "attach", "9", "{file}"), 2, "error: unknown review 9"),
        (("--as", "bob", "review", "attach", "1", "/no/such.pdf"), 2,
         "error: FILE /no/such.pdf: no such file or directory (give a path or a URL)"),
        (("--as", "bob", "review", "attach", "1", "{dir}"), 2, "error: FILE {dir}: not a regular file"),
        (("--as", "olga", "review", "attach", "1", "{file}"), 1,
         "error: review 1: only the reviewer (bob), the assigned approver (maria), the reviewer's manager or an admin "
         "may edit, not olga"),
        (("review", "attachment", "get", "1", "3"), 2, "error: review 1 has no attachment 3"),
        (("review", "attachment", "get", "1", "1", "-o", "{dir}"), 2,
         "error: Invalid value for '-o' / '--output': File '{dir}' is a directory."),
    ],
)
def test_bad_input_and_refusals(review: int, scorecard: Path, run: Any, tmp_path: Path, args: tuple[str, ...],
                                code: int, message: str) -> None:
    ok(run("--as", "bob", "review", "attach", "1", str(scorecard)))
    values = {"file": str(scorecard), "dir": str(tmp_path)}
    assert error(run(*(a.format(**values) for a in args)), code) == message.format(**values)


def test_the_size_limit_comes_from_settings(review: int, run: Any, database: Database, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSECHECK_ATTACHMENTS__MAX_SIZE", "1KB")
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 1025)
    assert error(run("--as", "bob", "review", "attach", "1", str(big)), 2) == (
        f"error: FILE {big}: 1025 bytes, over the attachment limit of 1024 bytes ([attachments] max_size)")
    assert count(database, "attachments") == 0
    big.write_bytes(b"x" * 1024)
    ok(run("--as", "bob", "review", "attach", "1", str(big)))
    monkeypatch.setenv("PULSECHECK_ATTACHMENTS__MAX_SIZE", "lots")
    assert error(run("review", "attachments", "1"), 2) == (
        "error: PULSECHECK_ATTACHMENTS__MAX_SIZE: [attachments] max_size: expected a size like 512KB, 10MB or 1GB, "
        "got 'lots'")


def test_signatures_bind_attachments_and_an_approved_review_is_frozen(review: int, scorecard: Path, run: Any,
                                                                     tmp_path: Path) -> None:
    ok(run("--as", "bob", "review", "attach", "1", str(scorecard)))
    ok(run("--as", "bob", "review", "submit", "1"))
    ok(run("--as", "maria", "review", "approve", "1", "--comment", "Agreed"))
    assert ok(run("review", "verify", "1")).startswith("ok: review 1: employee, manager signature(s) match")
    assert error(run("--as", "bob", "review", "attach", "1", str(scorecard)), 1) == (
        "error: review 1 is approved and frozen: reopen it to change it (signatures are cleared)")

    ok(run("--as", "maria", "review", "reopen", "1", "--comment", "one more file"))
    ok(run("--as", "bob", "review", "submit", "1"))
    late = tmp_path / "late.pdf"
    late.write_bytes(b"%PDF late")
    ok(run("--as", "bob", "review", "attach", "1", str(late)))  # after submission: an edit that voids the signature
    history = json.loads(ok(run("review", "history", "1", "--json")))
    assert (history[-1]["event"], history[-1]["comment"]) == (
        "edit", "changed after signing: attachments (added 2: late.pdf)")
    result = run("review", "verify", "1")
    assert result.exit_code == 1 and "FAIL employee signature of bob no longer matches the content" in result.stdout
    assert error(run("--as", "maria", "review", "approve", "1", "--comment", "ok"), 1) == (
        "error: cannot approve: the review changed after the reviewer signed it; reject it or have it re-submitted")


def test_stored_bytes_changed_by_sql_are_detected(review: int, scorecard: Path, run: Any, database: Database,
                                                  tmp_path: Path) -> None:
    ok(run("--as", "bob", "review", "attach", "1", str(scorecard)))
    ok(run("--as", "bob", "review", "submit", "1"))
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE attachments SET content = :b"), {"b": b"a forged scorecard"})
    result = run("review", "verify", "1")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "FAIL attachment 1 (scorecard.xlsx) of review 1: stored bytes changed (filed as sha256 "
        f"{SHA[:16]}…)"]
    assert error(run("review", "attachment", "get", "1", "1", "-o", str(tmp_path / "x")), 1) == (
        f"error: attachment 1 of review 1: the stored bytes do not match sha256 {SHA}")
    assert not (tmp_path / "x").exists()
