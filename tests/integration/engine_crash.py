"""Durable-rules worker processes that die at start-up, as they do when the C core segfaults.

The pool spawns its workers (a fresh interpreter each), so a monkeypatched initializer is not inherited: it is
pickled by reference and imported again in every child. `crashing_workers` makes this module importable there
(rootdir on sys.path, which spawn passes on) before patching the pool's initializer. A child that cannot import
it dies too, so the replacement says on stderr (inherited by the children, captured by capfd) that it ran.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pulsecheck.rules import durable

ABORTED = "engine_crash: worker aborted at start-up"


def abort_at_start(*_: object) -> None:
    """The worker initializer replaced: abort the process like a segfault would, before any work is done."""
    os.write(2, f"{ABORTED}\n".encode())
    os.abort()


@contextmanager
def crashing_workers(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Every durable-rules worker process started inside the block dies as it starts; afterwards, check one did."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    monkeypatch.setattr(durable, "init_worker", abort_at_start)
    capfd.readouterr()
    yield
    assert ABORTED in capfd.readouterr().err, "no worker ran the crashing initializer"
