"""The console script pauses the cyclic garbage collector for a command's start-up only (issue 17): a command
that opens its database (every long-running one: serve, worker, scheduler run) does its work with the collector
on, or a daemon would keep every reference cycle it ever made."""

from __future__ import annotations

import gc
from pathlib import Path

from pulsecheck.collector import pause_collector, paused
from pulsecheck.storage.db import Database


def test_opening_the_database_turns_the_collector_back_on(tmp_path: Path) -> None:
    assert gc.isenabled()
    pause_collector()
    try:
        assert not gc.isenabled()
        Database(f"sqlite:///{tmp_path / 'pulsecheck.db'}").dispose()
        assert gc.isenabled()
        Database(f"sqlite:///{tmp_path / 'other.db'}").dispose()  # a second database changes nothing
        assert gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()  # the test process's objects are collectable again


def test_a_collector_turned_off_by_someone_else_stays_off(tmp_path: Path) -> None:
    gc.disable()
    try:
        pause_collector()
        Database(f"sqlite:///{tmp_path / 'pulsecheck.db'}").dispose()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_bulk_work_pauses_the_collector_and_leaves_it_as_it_found_it() -> None:
    assert gc.isenabled()
    with paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # someone else's choice kept
    finally:
        gc.enable()
