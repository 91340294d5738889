"""Pre-fork serving: one parent loads everything once, N forked workers serve it from shared pages.

uvicorn's own `--workers` spawns fresh interpreters, so every worker imported numpy and the
app again and loaded its own copy of the match pool: memory grew by ~250 MB a worker (issue 12).
Here the parent builds the app, loads the pool and warms the kernels, then forks; the workers'
pages stay shared copy-on-write with the parent, and only what a worker writes becomes its own.

Rules a forked worker depends on (the caller prepares the process before `Prefork.run`, see
`preload` in hub/app.py, and its `after_fork` hook reopens what each worker needs):
- no thread may be running in the parent at fork time (a lock held by a thread that does not
  exist in the child never opens), so background threads start in each worker, after the fork;
- no database connection may be shared: the parent closes its own before forking and every
  worker opens its own.

The parent only supervises: it restarts a worker that dies, forwards SIGTERM/SIGINT to the
workers as SIGTERM (each shuts down in order: pending audit records are written) and exits once
they are all gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import uvicorn

from hashhub.hub.poolfile import release_heap
from hashhub.lifeline import die_with

log = logging.getLogger("uvicorn.error")  # uvicorn configures this one: messages show beside its own

#: a worker that dies this soon after it was forked counts as a crash at start-up ...
QUICK_DEATH_S = 5.0
#: ... and after this many in a row the parent gives up instead of forking in a loop.
MAX_QUICK_DEATHS = 5
#: how long the parent waits for its workers to shut down in order before it kills them.
STOP_TIMEOUT_S = 30.0
POLL_S = 0.1


def settle() -> None:
    """Collect garbage and hand freed heap back to the OS, then move every surviving object out of
    the collector's reach: a worker's collections never touch (and so never copy) the pages the
    parent filled before the fork."""
    release_heap()
    gc.freeze()


def warm_event_loop(config: uvicorn.Config) -> None:
    """Run one event loop of the kind the workers serve on, doing one anyio call, and close it: its
    first use imports uvloop and anyio's asyncio backend, and done here they are shared pages,
    where each worker would otherwise import its own copy (~3.5 MB a worker at 1M items, #12)."""
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(anyio.sleep(0))


def running_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t is not threading.main_thread()]


@dataclass
class Prefork:
    """Serve `config` (an app instance already built) from `workers` forked processes."""

    config: uvicorn.Config
    workers: int
    #: runs in each new worker before it serves: reopen what must not be shared.
    after_fork: Callable[[], None] = lambda: None
    _children: dict[int, float] = field(default_factory=dict)  # pid -> when forked
    _stopping: int = 0  # the signal that asked us to stop, 0 while serving
    _quick_deaths: int = 0

    def run(self) -> int:
        """Bind, fork the workers and supervise them until told to stop; the exit code."""
        if not self.config.loaded:
            self.config.load()
        sock = self.config.bind_socket()
        warm_event_loop(self.config)
        left = running_threads()
        if left:  # a fork copies their locks but not the threads: say so, it may hang a worker
            log.warning("forking while threads run: %s", ", ".join(left))
        settle()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for _ in range(self.workers):
                self._fork(sock)
            return self._supervise(sock)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            sock.close()

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stopping = self._stopping or signum

    def _fork(self, sock: object) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the parent's code
            os._exit(self._work(sock, parent))
        self._children[pid] = time.monotonic()

    def _work(self, sock: object, parent: int) -> int:
        code = 1
        try:
            # uvicorn installs its own handlers while serving and re-raises the signal that
            # stopped it afterwards: ignored here, so the worker exits through os._exit below.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            die_with(parent)
            self.after_fork()
            server = uvicorn.Server(self.config)
            server.run(sockets=[sock])  # type: ignore[list-item]
            code = 0 if server.started else 3
        except SystemExit as exc:  # uvicorn exits 3 when the app fails to start
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        return code

    def _supervise(self, sock: object) -> int:
        while not self._stopping:
            for pid, forked, status in self._reap():
                code = os.waitstatus_to_exitcode(status)
                quick = time.monotonic() - forked < QUICK_DEATH_S
                self._quick_deaths = self._quick_deaths + 1 if quick else 0
                if self._quick_deaths >= MAX_QUICK_DEATHS:
                    log.error("workers keep dying at start-up (last exit %s); stopping", code)
                    self._stop()
                    return 1
                log.warning("worker %d exited %s; starting another", pid, code)
                self._fork(sock)
            time.sleep(POLL_S)
        log.info("stopping %d workers (signal %d)", len(self._children), self._stopping)
        self._stop()
        return 0

    def _reap(self) -> list[tuple[int, float, int]]:
        """The workers that exited since last asked: (pid, when forked, wait status) each."""
        out = []
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # none left at all
                break
            if pid == 0:
                break
            if pid in self._children:
                out.append((pid, self._children.pop(pid), status))
        return out

    def _stop(self) -> None:
        """SIGTERM to every worker (an orderly shutdown each), SIGKILL to those still up later."""
        for pid in self._children:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self._children and time.monotonic() < deadline:
            self._reap()
            time.sleep(POLL_S)
        for pid in list(self._children):
            log.error("worker %d did not stop within %gs; killing it", pid, STOP_TIMEOUT_S)
            _signal(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            self._children.pop(pid)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited on its own meanwhile
        os.kill(pid, sig)
