"""Python's cyclic garbage collector paused while bulk work runs, for every user at once.

Writing or rebuilding a batch makes and drops hundreds of thousands of acyclic objects (rows,
their dicts, SQL parameters); the collector's automatic passes over them find nothing and cost
as much as the work itself (measured: ~5 us an item of a 10,000-item write, 9.6 against 3.4 us a
row while a parsed batch was unpickled). Users may overlap (server threads writing, an import
rebuilding batches while it writes), so the first to enter pauses it and the last to leave
restores what was set before; nobody re-enables it under another user's feet.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_users = 0  # callers inside paused()
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    global _users, _was_enabled
    with _lock:
        if _users == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _was_enabled:
                gc.enable()
