"""Local server processes: wait until one answers, stop it the way a person would.

Used by `hashhub demo` (which runs a hub and an agent) and by the end-to-end tests, so both start
and stop servers the same way.
"""

from __future__ import annotations

import signal
import subprocess
import time

import httpx


class ServerNotReady(RuntimeError):
    """The process exited, or nothing answered at its health URL in time."""


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Return once `url` answers 200; raise ServerNotReady if `proc` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ServerNotReady(f"{proc.args} exited {proc.returncode} before answering at {url}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise ServerNotReady(f"nothing answered at {url} within {timeout:g}s")
        time.sleep(0.2)


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Ctrl-C first (servers shut down in order on it), then kill if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
