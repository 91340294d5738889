"""Append-only audit log, each record chained to the previous one by SHA-256.

Every write and every list read adds a record inside the same transaction as the action. A record's
hash covers its own fields and the previous record's hash, and the `audit` head keeps the last
sequence number and hash, so `verify` notices an edited, deleted, inserted, reordered or truncated
record.
"""

from __future__ import annotations

import hashlib
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
