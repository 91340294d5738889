"""Split kernel work across threads: the C kernels release the GIL, so plain threads run in parallel."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


@lru_cache(maxsize=1)
def workers() -> int:
    """CPUs this process may run on (looked up once: the affinity call costs microseconds a query)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="hashhub-index")
        return _pool


def shutdown() -> None:
    """Stop the pool's threads (idle ones exit; the next parallel call starts a new pool): a
    process about to fork calls this so that no thread runs at the fork."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)


def _forget_pool_in_child() -> None:
    # A fork copies no thread: a child inheriting the parent's pool would queue work that no
    # thread ever runs (pre-forked hub workers search right after the fork). Start afresh.
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def split(n: int, min_piece: int) -> list[tuple[int, int]]:
    """[0, n) cut into at most workers() ranges of at least `min_piece` items each."""
    pieces = max(1, min(workers(), n // max(1, min_piece)))
    if pieces == 1:
        return [(0, n)]
    bounds = [n * k // pieces for k in range(pieces + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(pieces)]


def map_ranges(fn: Callable[[int, int], T], ranges: list[tuple[int, int]]) -> list[T]:
    """fn(lo, hi) for every range: in this thread when there is one, else on the shared pool."""
    if len(ranges) == 1:
        return [fn(*ranges[0])]
    futures = [_executor().submit(fn, lo, hi) for lo, hi in ranges[1:]]
    first = fn(*ranges[0])  # the caller's thread works too instead of waiting idle
    return [first, *(f.result() for f in futures)]
