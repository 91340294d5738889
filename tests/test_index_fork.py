"""The index's kernel threads after a fork: pre-forked hub workers search right after forking."""

from __future__ import annotations

import os
import signal
import threading
import time

from hashhub.index import _parallel


def test_a_forked_child_runs_parallel_work_on_threads_of_its_own() -> None:
    ranges = [(0, 10), (10, 20), (20, 30)]
    for _ in range(3):  # the parent's pool exists and its threads went idle
        assert _parallel.map_ranges(lambda lo, hi: hi - lo, ranges) == [10, 10, 10]
    time.sleep(0.2)
    pid = os.fork()
    if pid == 0:  # the child: an inherited pool would have no threads, and this would never return
        signal.alarm(10)
        try:
            ok = _parallel.map_ranges(lambda lo, hi: hi - lo, ranges) == [10, 10, 10]
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_shutdown_leaves_no_index_thread_and_the_next_call_starts_a_pool() -> None:
    ranges = [(0, 5), (5, 10)]
    _parallel.map_ranges(lambda lo, hi: hi - lo, ranges)
    _parallel.shutdown()
    assert not [t for t in threading.enumerate() if t.name.startswith("hashhub-index")]
    assert _parallel.map_ranges(lambda lo, hi: hi - lo, ranges) == [5, 5]
