"""The collector pause shared by the batch writer and the importer."""

from __future__ import annotations

import gc

from hashhub.hub import gcpause


def test_overlapping_users_restore_the_collector_only_when_the_last_one_leaves() -> None:
    assert gc.isenabled()
    first, second = gcpause.paused(), gcpause.paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the importer's pause ends while a write is still running
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off() -> None:
    gc.disable()
    try:
        with gcpause.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
