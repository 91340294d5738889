"""Write transactions that span several batches: how `hashhub hub import` commits.

A `POST /api/v1/items` is one transaction: its batch is written whole or not at all. An import's
unit is the file: it reports every rejected row by number and is idempotent to run again (items
are found again by (contributor, external id) and by identical fingerprints), so it may commit
several batches at once. That pays because every commit rewrites each page its transaction
touched, and the (contributor, fp_key) dedup index is random: a batch of 10,000 touches nearly
every leaf page of it, and a group of batches rewrites those pages once instead of once a batch.

A group holds the write lock (and on PostgreSQL the feed cursor's row lock) for about
`GROUP_SECONDS` at a time, so other writers wait at most about that long, and its changes reach
the feed together at its commit, in cursor order as always. A failure part-way rolls back the
open group only; the groups before it stand, and a second run of the same import writes the rest
without duplicates.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

from sqlalchemy.engine import Connection, Engine

from hashhub import db

#: how long a group of batches may hold the write lock before it commits
GROUP_SECONDS = 1.0
#: and how many rows it may hold: past what the connection's page cache keeps, a transaction
#: spills pages to the log before its commit, and a group stops paying
GROUP_ROWS = 100_000


class Group:
    """One open write transaction at a time over consecutive batches (see the module docstring).

    `connection()` for each batch, `written(rows)` after it, then `commit()` at the end;
    `rollback(error)` discards the open group. `seconds=0` commits after every batch."""

    def __init__(self, engine: Engine, seconds: float = GROUP_SECONDS, rows: int = GROUP_ROWS) -> None:
        self._engine = engine
        self._seconds = seconds
        self._rows = rows
        self._open: ExitStack | None = None
        self._conn: Connection | None = None
        self._since = 0.0
        self._held = 0  # rows written in the open group

    def connection(self) -> Connection:
        """The open transaction, begun (and the write lock taken) if none is open."""
        if self._conn is None:
            stack = ExitStack()
            self._conn = stack.enter_context(db.write(self._engine))
            self._open = stack
            self._since = time.monotonic()
            self._held = 0
        return self._conn

    def written(self, rows: int) -> None:
        """A batch of `rows` is written in the open transaction: commit if the group is due."""
        self._held += rows
        if self._held >= self._rows or time.monotonic() - self._since >= self._seconds:
            self.commit()

    def commit(self) -> None:
        stack, self._open, self._conn = self._open, None, None
        if stack is not None:
            stack.close()  # leaves `db.write` normally: commits

    def rollback(self, error: BaseException) -> None:
        stack, self._open, self._conn = self._open, None, None
        if stack is not None:
            stack.__exit__(type(error), error, error.__traceback__)  # `db.write` rolls back
