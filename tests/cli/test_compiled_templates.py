"""Report templates compiled once per user (issue 17): the installed script keeps Jinja2's compiled templates in
the user's cache directory and loads them on the next run, with the same page; a damaged file is compiled again
and replaced; a cache directory someone else may write to is never used."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pulsecheck.reports.compiled import bytecode_cache
from tests.conftest import NOW, Factory, installed, ok

EXPORT = ("review", "export", "1", "--format", "html")


@pytest.fixture
def review(factory: Factory, os_login_admin: str) -> None:
    factory.team()
    factory.review("ACME")


def export(db_url: str, cache: Path, cwd: Path) -> str:
    """The review's HTML page, printed by the installed script with `cache` as the user's cache directory."""
    env = {"PULSECHECK_DATABASE_URL": db_url, "PULSECHECK_NOW": NOW.isoformat(), "XDG_CACHE_HOME": str(cache)}
    return ok(installed(*EXPORT, cwd=cwd, env=env))


def compiled(cache: Path) -> dict[str, int]:
    """The compiled templates kept: file name -> modification time."""
    directory = cache / "pulsecheck" / "templates"
    return {path.name: path.stat().st_mtime_ns for path in directory.iterdir()} if directory.exists() else {}


def test_the_second_run_loads_what_the_first_compiled(db_url: str, review: None, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = export(db_url, cache, tmp_path)
    assert "<!DOCTYPE html>" in first and "ACME" in first
    kept = compiled(cache)
    assert kept  # the page's template, compiled
    assert os.stat(cache / "pulsecheck" / "templates").st_mode & 0o777 == 0o700  # private
    assert export(db_url, cache, tmp_path) == first
    assert compiled(cache) == kept  # loaded, not compiled and written again


@pytest.mark.parametrize("damage", ["empty", "text", "zeros", "cut after the header"])
def test_a_damaged_file_is_compiled_again_and_replaced(db_url: str, review: None, tmp_path: Path,
                                                       damage: str) -> None:
    from jinja2.bccache import bc_magic

    cache = tmp_path / "cache"
    first = export(db_url, cache, tmp_path)
    for name in compiled(cache):
        path = cache / "pulsecheck" / "templates" / name
        whole = path.read_bytes()
        assert whole.startswith(bc_magic)
        path.write_bytes({"empty": b"", "text": b"not a cache", "zeros": b"\x00" * 64,
                          "cut after the header": whole[: len(bc_magic) + 3]}[damage])
    assert export(db_url, cache, tmp_path) == first
    assert all((cache / "pulsecheck" / "templates" / name).stat().st_size > 100 for name in compiled(cache))


def test_a_cache_others_may_write_to_is_not_used(db_url: str, review: None, tmp_path: Path) -> None:
    fresh = export(db_url, tmp_path / "private", tmp_path)
    shared = tmp_path / "shared"
    (shared / "pulsecheck" / "templates").mkdir(parents=True)
    (shared / "pulsecheck" / "templates").chmod(0o777)
    assert export(db_url, shared, tmp_path) == fresh
    assert compiled(shared) == {}  # nothing written where another user could swap it for code


def test_environments_that_compile_differently_never_share_a_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    names = {
        cache.pattern  # type: ignore[union-attr]
        for cache in (bytecode_cache("html", {"trim_blocks": True}), bytecode_cache("html", {}),
                      bytecode_cache("markdown", {}), bytecode_cache("html", {"keep_trailing_newline": True}))
    }
    assert len(names) == 4
