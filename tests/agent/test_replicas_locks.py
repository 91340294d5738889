"""The store lock replicas elect a syncing leader with: exclusive across processes on SQLite and
PostgreSQL, and freed the moment its holder is killed (kill -9 runs no clean-up code)."""

from __future__ import annotations

import subprocess
import sys
import time

from hashhub.agent.locks import StoreLock
from hashhub.agent.store import Store

from .procs import env

HOLD = """
import sys, time
from hashhub.agent.db import open_engine
from hashhub.agent.locks import StoreLock
from hashhub.agent.store import Store
lock = StoreLock(Store(open_engine(sys.argv[1])), "leader")
assert lock.acquire(timeout=30)
print("held", flush=True)
time.sleep(600)
"""


def _url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def test_one_holder_at_a_time_and_release_hands_it_over(any_store: Store) -> None:
    first, second = StoreLock(any_store, "leader"), StoreLock(any_store, "leader")
    other_name = StoreLock(any_store, "sync")
    assert first.acquire(blocking=False) and first.held
    assert not second.acquire(blocking=False) and not second.held
    assert not second.acquire(timeout=0.2)
    assert other_name.acquire(blocking=False)  # locks of other names are independent
    first.release()
    assert second.acquire(blocking=False)
    second.release()
    other_name.release()


def test_a_killed_holder_frees_the_lock_at_once(any_store: Store) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, _url(any_store)], stdout=subprocess.PIPE, text=True, env=env()
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        lock = StoreLock(any_store, "leader")
        assert not lock.acquire(blocking=False)
        holder.kill()  # SIGKILL
        holder.wait(timeout=30)
        started = time.monotonic()
        assert lock.acquire(timeout=10)
        assert time.monotonic() - started < 2
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
