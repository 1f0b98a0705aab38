"""The --db URL: PostgreSQL without its driver says which extra to install; a bad URL is one error line."""

from __future__ import annotations

import sys
from typing import Any

import pytest


@pytest.mark.parametrize("url", ["postgresql://postgres@127.0.0.1:5432/test", "postgres://postgres@127.0.0.1/test"])
def test_postgresql_without_the_driver_names_the_extra(run: Any, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now fails, as in a base install
    result = run("--db", url, "users", "list")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "error: PostgreSQL needs the postgres extra: pip install 'pulsecheck[postgres]'"
    ]


def test_an_unknown_driver_is_one_error_line_naming_the_url(run: Any) -> None:
    result = run("users", "list", "--db", "mysql+nosuchdriver://localhost/x")
    assert (result.exit_code, result.stdout) == (2, "")
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --db 'mysql+nosuchdriver://localhost/x': "), lines
