"""Python's cyclic garbage collector, paused where a command makes many objects and no cycles (issue 17).

Start-up: the collector waits while the modules load.

Start-up makes a few hundred thousand objects that live as long as the process (modules, classes, the mapped
classes with their SQLAlchemy machinery, the settings models) and next to no cyclic garbage, yet the collector
runs every 700 allocations and traverses them again and again. The console script pauses it first thing; the
first database engine (a command's work begins) resumes it, with what start-up made frozen: later collections do
not traverse it again. A command that never opens a database ends soon after its start-up.

Bulk work (`paused()`): `score` reads and scores a chunk of accounts, some hundred thousand tuples, lists and
components, none in a reference cycle; the collections they set off walk every object of the process and find
nothing to free (a tenth of scoring's time). Without cycles, reference counting frees everything: memory is
unaffected.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

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
