"""Has anything been committed since the pool last caught up? Answered without a query when possible.

Catching the pool up reads the change-log head in a transaction of its own (a few tenths of a
millisecond), which the match path used to pay on every request. On SQLite, `PRAGMA data_version`
on a connection of our own changes whenever any other connection (this process or another) commits,
and reading it costs microseconds: the pool is caught up only when it moved. Other databases have no
such counter, so there every check says "maybe" and the pool catches up as before.
"""

from __future__ import annotations

import sqlite3
import threading

from sqlalchemy.engine import Engine

from hashhub import db


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

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
