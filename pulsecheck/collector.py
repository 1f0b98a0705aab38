"""Python's cyclic garbage collector, paused where a command makes many objects and no cycles (issue 17).

Start-up: the collector waits while the modules load.

Start-up makes a few hundred thousand objects that live as long as the process (modules, classes, the mapped
classes with their SQLAlchemy machinery, the settings models) and next to no cyclic garbage, yet the collector
runs every 700 allocations and traverses them again and again. The console script pauses it first thing; the
first database engine (a command's work begins) resumes it, with what start-up made frozen: later collections do
not traverse it again. A command that never opens a database ends soon after its start-up.

Exit (`exit_now`): the command's work is done, its output flushed and its databases closed; the interpreter's
teardown (a last collection over everything not frozen, then every module's objects freed one by one) would add
a seventh to a read command's run for nothing anyone sees, so the console script leaves without it.

Bulk work (`paused()`): `score` reads and scores a chunk of accounts, some hundred thousand tuples, lists and
components, none in a reference cycle; the collections they set off walk every object of the process and find
nothing to free (a tenth of scoring's time). Without cycles, reference counting frees everything: memory is
unaffected.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import NoReturn

_state = {"paused": False}


def pause_collector() -> None:
    """Turn the cyclic garbage collector off until `resume_collector` (unless someone else turned it off)."""
    if gc.isenabled():
        gc.disable()
        _state["paused"] = True


def resume_collector() -> None:
    """Turn the collector back on if `pause_collector` turned it off, the objects made so far frozen."""
    if _state["paused"]:
        _state["paused"] = False
        gc.freeze()
        gc.enable()


def exit_now(code: object) -> NoReturn:
    """End the process with `code` (as `sys.exit` takes it) once what a normal exit would finish is finished:
    the exit functions run (`atexit`: logging's shutdown among them), every open database closed (SQLite folds its
    write-ahead log back into the file on the last close, so a copy of the file alone holds every commit). With
    another thread still running, or output that cannot be flushed, the normal exit runs instead."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # a message: printed, exit status 1, as sys.exit does
        print(code, file=sys.stderr)
        status = 1
    run_exit_functions = getattr(atexit, "_run_exitfuncs", None)  # CPython's, as the normal exit calls them
    if run_exit_functions is None or ("threading" in sys.modules and sys.modules["threading"].active_count() > 1):
        sys.exit(status)  # no way to run the exit functions, or a thread the normal exit waits for
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: the normal exit reports it, as it always has
        sys.exit(status)
    run_exit_functions()  # logging's shutdown, temporary files' clean-up, ...
    if "pulsecheck.storage.db" in sys.modules:  # (a command that opened no database never imported it)
        sys.modules["pulsecheck.storage.db"].close_all()
    with suppress(OSError, ValueError):  # what an exit function printed
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(status)


@contextmanager
def paused() -> Iterator[None]:
    """The collector off for the block, and on again after if it was on."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


@contextmanager
def settled() -> Iterator[None]:
    """The objects alive now (the portfolio's facts, the firings: read-only through the block) left out of the
    garbage collector's passes while the block runs: each full pass would walk them all again, a cost that grows
    with the portfolio, for nothing to collect."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
