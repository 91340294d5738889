"""Child processes that must not outlive the process that started them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1  # prctl(2)


def die_with(parent: int) -> None:
    """Have the kernel send this process SIGTERM when `parent` dies, however it dies (kill -9
    included), so no orphan keeps working alone: a pre-forked worker serving on, or an import's
    parse process blocked for ever on a pipe nobody reads. Linux only; a no-op elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request above took effect
        raise SystemExit(1)
