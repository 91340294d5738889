"""Append-only audit log, each record chained to the previous one by SHA-256.

Every write and every list read adds a record inside the same transaction as the action. A record's
hash covers its own fields and the previous record's hash, and the `audit` head keeps the last
sequence number and hash, so `verify` notices an edited, deleted, inserted, reordered or truncated
record. Matches are the exception to "in the same transaction": `ActivityLog` sums them per key and
writes one chained record per key per window (1 s by default) from a background thread.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hashhub import db
from hashhub.hub import heads
from hashhub.hub.models import audit_log

GENESIS = "0" * 64


def _digest(seq: int, at: float, actor: str, action: str, target: str, detail: str, prev: str) -> str:
    payload = orjson.dumps([seq, at, actor, action, target, detail, prev])
    return hashlib.sha256(payload).hexdigest()


def record(
    conn: Connection, actor: str, action: str, target: str = "", detail: dict[str, Any] | None = None
) -> int:
    """Append one record in `conn`'s transaction; returns its sequence number."""
    seq, prev = heads.lock(conn, heads.AUDIT)
    seq += 1
    at = time.time()
    text = orjson.dumps(detail or {}, option=orjson.OPT_SORT_KEYS).decode()
    digest = _digest(seq, at, actor, action, target, text, prev)
    conn.execute(
        sa.insert(audit_log).values(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            target=target,
            detail=text,
            prev_hash=prev,
            hash=digest,
        )
    )
    heads.store(conn, heads.AUDIT, seq, digest)
    return seq


def record_now(
    engine: Engine, actor: str, action: str, target: str = "", detail: dict[str, Any] | None = None
) -> None:
    """Append one record in a transaction of its own (for reads, which write nothing else)."""
    with db.write(engine) as conn:
        record(conn, actor, action, target, detail)


@dataclass
class Verification:
    ok: bool = True
    records: int = 0
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.ok = False
        if len(self.problems) < 100:
            self.problems.append(problem)


def verify(engine: Engine) -> Verification:
    """Recompute the whole chain; every broken link is reported by sequence number."""
    result = Verification()
    with db.read(engine, snapshot=True) as conn:
        head_seq, head_hash = conn.execute(
            sa.select(heads.heads.c.value, heads.heads.c.digest).where(heads.heads.c.name == heads.AUDIT)
        ).one()
        prev, expected_seq = GENESIS, 1
        rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).yield_per(10_000)
        for row in rows:
            result.records += 1
            if row.seq != expected_seq:
                result.fail(f"record {expected_seq} is missing (next record is {row.seq})")
            if row.prev_hash != prev:
                result.fail(f"record {row.seq} does not link to the record before it")
            digest = _digest(row.seq, row.at, row.actor, row.action, row.target, row.detail, row.prev_hash)
            if digest != row.hash:
                result.fail(f"record {row.seq} was altered after it was written (hash mismatch)")
            prev, expected_seq = row.hash, row.seq + 1
        if expected_seq - 1 != head_seq or prev != (head_hash if head_seq else GENESIS):
            result.fail(
                f"the chain ends at record {expected_seq - 1} but the head says {head_seq}: "
                "records were removed from the end or the head was edited"
            )
    return result


@dataclass
class _Tally:
    """Match activity of one key in the current window."""

    actor: str
    action: str
    key_id: str
    first_at: float
    last_at: float = 0.0
    requests: int = 0
    queries: int = 0
    matched: int = 0
    items: set[int] = field(default_factory=set)

    def detail(self) -> dict[str, Any]:
        ids = sorted(self.items)
        return {
            "requests": self.requests,
            "queries": self.queries,
            "matched": self.matched,
            "items": [str(i) for i in ids[:MAX_ITEMS_PER_RECORD]],
            "items_hit": len(ids),
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


#: item ids listed in one aggregated record (`items_hit` still counts them all).
MAX_ITEMS_PER_RECORD = 10_000
_log = logging.getLogger(__name__)


class ActivityLog:
    """Match activity summed per key and written as one chained record per key per window.

    A match is a list read, so it is audited, but a synchronous write per request would cost more
    than the match itself. `note` only adds to an in-memory tally; a background thread appends one
    record per (organisation, key, action) every `window` seconds (requests, queries, queries with a
    match, item ids hit, first and last request time) through `record`, so the records are chained
    like any other. `close` (server shutdown) writes what is pending. What a process killed with
    SIGKILL had not yet written (at most one window) is lost. `window` 0 writes each request's
    record at once. The thread starts with the first note and ends when a window passes idle.
    """

    def __init__(self, engine: Engine, window: float) -> None:
        self._engine = engine
        self.window = window
        self._pending: dict[tuple[str, str, str], _Tally] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def note(
        self, actor: str, action: str, key_id: str, queries: int, matched: int, items: list[int]
    ) -> None:
        now = time.time()
        with self._lock:
            tally = self._pending.get((actor, action, key_id))
            if tally is None:
                tally = self._pending[(actor, action, key_id)] = _Tally(actor, action, key_id, now)
            tally.last_at = now
            tally.requests += 1
            tally.queries += queries
            tally.matched += matched
            tally.items.update(items)
            if self.window > 0 and self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="hashhub-audit-flush", daemon=True)
                self._thread.start()
        if self.window <= 0:
            self.flush()

    def flush(self) -> int:
        """Write every pending tally now (one transaction); returns the records written."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        try:
            with db.write(self._engine) as conn:
                for t in pending.values():
                    record(conn, t.actor, t.action, t.key_id, t.detail())
        except Exception:
            with self._lock:  # keep them for the next try rather than lose audit records
                for k, t in pending.items():
                    if k in self._pending:
                        self._merge(k, t)
                    else:
                        self._pending[k] = t
            raise
        return len(pending)

    def _merge(self, key: tuple[str, str, str], older: _Tally) -> None:
        newer = self._pending[key]
        newer.first_at = older.first_at
        newer.requests += older.requests
        newer.queries += older.queries
        newer.matched += older.matched
        newer.items |= older.items

    def _run(self) -> None:
        while not self._stop.wait(self.window):
            try:
                written = self.flush()
            except Exception:  # the database is busy or gone: try again next window
                _log.exception("could not write the match audit records; retrying")
                continue
            with self._lock:
                if not written and not self._pending:
                    self._thread = None  # idle: the next note starts a new thread
                    return

    def close(self) -> None:
        """Stop the background thread and write what is pending (server shutdown)."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()
        self.flush()
        self._stop.clear()
