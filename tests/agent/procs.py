"""Real processes on loopback for end-to-end tests: `hashhub ...` commands and servers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hashhub import servers
from hashhub.servers import stop

HASHHUB = [sys.executable, "-c", "from hashhub.cli import main; main()"]
ROOT = Path(__file__).resolve().parents[2]


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("HASHHUB_")}
    out.update(extra)
    return out


def hashhub(*args: str, check: bool = True, timeout: float = 300, **kw: Any) -> subprocess.CompletedProcess:
    """Run `hashhub ARGS...` to completion, text output captured."""
    result = subprocess.run(
        [*HASHHUB, *args], capture_output=True, text=True, timeout=timeout, env=kw.pop("env", env()), **kw
    )
    if check and result.returncode != 0:
        raise AssertionError(f"hashhub {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def hashhub_json(*args: str, **kw: Any) -> Any:
    return json.loads(hashhub(*args, **kw).stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    try:
        servers.wait_healthy(url, proc, timeout)
    except servers.ServerNotReady as exc:
        raise AssertionError(str(exc)) from None


@contextmanager
def server(*args: str, health: str, log: Path, **kw: Any) -> Iterator[subprocess.Popen]:
    """`hashhub ARGS...` as a background server, answering at `health`, stopped afterwards."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*HASHHUB, *args], stdout=out, stderr=subprocess.STDOUT, env=kw.pop("env", env())
        )
        try:
            wait_http(health, proc)
            yield proc
        finally:
            stop(proc)
