"""Locks shared by every agent process on one store, released by the system when a holder dies.

    lock = StoreLock(store, "leader")
    if lock.acquire(blocking=False): ...      # True: this process holds it until release()

Replicas use two: `leader` (held for as long as a replica runs the background sync; the others only
follow the store) and `sync` (held for each sync round and for writing saved index files, so syncs
and saves from any process, `hashhub agent sync` included, never interleave). A lock has to outlive
nothing: a kill -9 must free it at once so another replica takes over, hence

- SQLite: `flock` on `<database>.<name>.lock` beside the database file (the kernel drops it with
  the process);
- PostgreSQL: a session advisory lock on a connection of its own (the server drops it with the
  connection);
- anything else (an in-memory database): a lock inside this process only.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from typing import Any

from sqlalchemy import Connection, text

from hashhub.agent.store import Store

POLL_SECONDS = 0.05


class StoreLock:
    """One named lock on a store; not re-entrant. `held` says whether this object holds it."""

    def __init__(self, store: Store, name: str) -> None:
        self.name = name
        self._store = store
        self._local = threading.Lock()  # threads of this process queue here first
        self._fd: int | None = None
        self._conn: Connection | None = None
        path = store.local_path()
        self._path = path.with_name(f"{path.name}.{name}.lock") if path is not None else None
        self._postgres = store.engine.dialect.name == "postgresql"
        digest = hashlib.blake2b(f"hashhub-agent:{name}".encode(), digest_size=8).digest()
        self._key = int.from_bytes(digest, "big", signed=True)
        self.held = False
        self._owner: int | None = None

    @property
    def mine(self) -> bool:
        """Whether the calling thread holds it."""
        return self.held and self._owner == threading.get_ident()

    def acquire(self, *, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; with `blocking`, wait (up to `timeout` seconds, None: for ever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        wait = -1 if timeout is None or not blocking else timeout
        if not self._local.acquire(blocking=blocking, timeout=wait):
            return False
        try:
            while not self._try_shared():
                if not blocking or (deadline is not None and time.monotonic() >= deadline):
                    self._local.release()
                    return False
                time.sleep(POLL_SECONDS)
        except BaseException:
            self._local.release()
            raise
        self.held, self._owner = True, threading.get_ident()
        return True

    def release(self) -> None:
        if not self.held:
            return
        self.held, self._owner = False, None
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None
            if self._conn is not None:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
                self._conn.close()
                self._conn = None
        finally:
            self._local.release()

    def _try_shared(self) -> bool:
        """One attempt at the cross-process part of the lock."""
        if self._path is not None:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            return True
        if self._postgres:
            conn = self._store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar()
            if got:
                self._conn = conn
                return True
            conn.close()
            return False
        return True  # in-memory store: no other process can open it

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.release()
