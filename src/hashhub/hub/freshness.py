"""Has anything been committed since the pool last caught up? Answered without a query per request.

Catching the pool up reads the change-log head in a transaction of its own (a few tenths of a
millisecond), which the match path used to pay on every request. Two ways avoid it:

- SQLite (`HeadProbe`): `PRAGMA data_version` on a connection of our own changes whenever any
  other connection (this process or another) commits, and reading it costs microseconds: the pool
  is caught up only when it moved.
- Other databases (`HeadFollower`, PostgreSQL): there is no such counter, so a thread per process
  reads the change-log head every `FOLLOW_INTERVAL_S` and catches the pool up itself when it moved;
  a write committed through this process's own engine is noticed at once (engine events), so the
  process's next request sees its own writes. The match path itself runs no SQL: every process
  reflects another's commit within the interval plus one catch-up, well inside the 1 s promise.

Both answer `unchanged()` (nothing committed since `caught_up` was last told a `version()`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hashhub import db
from hashhub.hub import heads

#: seconds between two reads of the change-log head by a process's follower thread.
FOLLOW_INTERVAL_S = 0.1
#: how long a request waits for the follower to catch up before it catches up itself.
FOLLOW_WAIT_S = 1.0
_WROTE = "hashhub.wrote"  # set in a pooled connection's info while its transaction has written
_WRITES = ("INSERT", "UPDATE", "DELETE", "MERGE")
_log = logging.getLogger(__name__)


class HeadProbe:
    def __init__(self, engine: Engine) -> None:
        self._conn: sqlite3.Connection | None = None
        self._seen: int | None = None
        self._lock = threading.Lock()
        path = engine.url.database
        if db.is_sqlite(engine) and path and path != ":memory:" and not path.startswith("file:"):
            # Our own connection, never used to write: every commit elsewhere bumps its counter.
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)

    def version(self) -> int | None:
        """The database's change counter now (None: this database has none)."""
        if self._conn is None:
            return None
        with self._lock:
            try:
                return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error:
                return None

    def unchanged(self) -> bool:
        """True only when nothing was committed since `caught_up` was last told a version."""
        seen = self._seen
        return seen is not None and self.version() == seen

    def caught_up(self, version: int | None) -> None:
        """The pool has caught up with everything committed before `version` was read."""
        self._seen = version

    def await_follower(self, timeout: float) -> bool:
        """No thread catches up for the caller here: it must catch up itself."""
        return False

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class HeadFollower:
    """A per-process follower of the change log for databases without a change counter.

    `version()` is a generation number, bumped when this process commits a write through `engine`
    and when the thread finds the change-log head moved; `catch_up` (the caller's refresh, which
    reads `version()`, catches the pool up and reports `caught_up`) runs on the thread whenever the
    generation is ahead of what the pool caught up with. The thread starts with the first
    `caught_up` (so a server process starts it, not a parent that forks workers) and is started
    again in a forked child. A request that finds the generation ahead waits for the thread
    (`await_follower`) instead of reading the database itself."""

    def __init__(
        self, engine: Engine, catch_up: Callable[[], None], interval: float = FOLLOW_INTERVAL_S
    ) -> None:
        self._engine = engine
        self._catch_up = catch_up
        self._interval = interval
        self._generation = 0
        self._seen: int | None = None
        self._head: int | None = None  # the change-log head the thread read last
        self._bump_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._caught_up = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        sa.event.listen(engine, "after_cursor_execute", self._executed)
        sa.event.listen(engine, "checkin", self._checked_in)

    def version(self) -> int:
        return self._generation

    def unchanged(self) -> bool:
        return self._seen == self._generation

    def caught_up(self, version: int | None) -> None:
        with self._caught_up:
            self._seen = version
            self._caught_up.notify_all()
        self._ensure_running()

    def await_follower(self, timeout: float) -> bool:
        """Have the thread catch up now and wait for it (at most `timeout` s), so that requests
        never read the database themselves; False when there is no thread to wait for (not yet
        started, or the caller is the thread) or it did not catch up in time."""
        thread = self._thread
        if thread is None or thread is threading.current_thread() or not thread.is_alive():
            return False
        self._wake.set()
        with self._caught_up:
            return self._caught_up.wait_for(self.unchanged, timeout)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread() and self._pid == os.getpid():
            thread.join(timeout=10)
        for name, listener in (("after_cursor_execute", self._executed), ("checkin", self._checked_in)):
            if sa.event.contains(self._engine, name, listener):
                sa.event.remove(self._engine, name, listener)

    # -- noticing changes -------------------------------------------------------------------------

    def _bump(self) -> None:
        with self._bump_lock:
            self._generation += 1
        self._wake.set()  # catch up on the thread now rather than at the next poll

    def _executed(
        self, conn: Connection, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        # The flag lives with the pooled connection until it is returned, after its commit.
        wrote = context is not None and (context.isinsert or context.isupdate or context.isdelete)
        if wrote or statement.lstrip()[:6].upper().startswith(_WRITES):
            conn.info[_WROTE] = True

    def _checked_in(self, _dbapi_connection: Any, record: Any) -> None:
        # Checked in after the transaction ended: what it wrote is committed (or rolled back, which
        # costs one needless catch-up) and visible to the refresh this triggers.
        if record is None or record.info.pop(_WROTE, False):
            self._bump()

    # -- the thread -------------------------------------------------------------------------------

    def _ensure_running(self) -> None:
        if self._stop.is_set():
            return
        pid = os.getpid()
        thread = self._thread
        if thread is not None and self._pid == pid and thread.is_alive():
            return
        with self._start_lock:
            if self._thread is not thread:
                return  # another caller started it meanwhile
            self._pid = pid
            self._thread = threading.Thread(target=self._run, name="hashhub-head-follower", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                with db.read(self._engine) as conn:
                    head = heads.current(conn)
                if head != self._head:
                    self._head = head
                    self._bump()
                    self._wake.clear()  # this pass catches up; no second pass for the same move
                if not self.unchanged():
                    self._catch_up()
            except Exception:  # the database is down or busy: say so once, keep trying
                if not failing:
                    _log.exception("cannot follow the change log; retrying every %.1f s", self._interval)
                failing = True
                continue
            if failing:
                _log.info("following the change log again")
                failing = False


Freshness = HeadProbe | HeadFollower


def for_engine(engine: Engine, catch_up: Callable[[], None]) -> Freshness:
    """The probe for `engine`: SQLite's counter where there is a database file, else a follower
    thread that runs `catch_up` when something was committed."""
    probe = HeadProbe(engine)
    if probe.version() is not None or db.is_sqlite(engine):
        return probe  # SQLite in memory has no counter, but no other process either
    probe.close()
    return HeadFollower(engine, catch_up)
