"""The counters that order the hub's history: the feed cursor and the audit chain head.

PostgreSQL sequences hand out numbers in call order but transactions commit in any order, so a reader
polling "everything after cursor 17" can see 19 before 18 commits and skip 18 forever. Instead every
writing transaction locks the `changes` row first and sets the new cursor value in the same
transaction as its changes: the row lock makes writers commit one after another in cursor order, so
once a reader sees head value H, every change up to H is committed and visible. (SQLite has a single
writer anyway.) The audit head works the same way; writers always lock `changes` before `audit`.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hashhub.hub.models import heads

CHANGES = "changes"
AUDIT = "audit"


def lock(conn: Connection, name: str) -> tuple[int, str]:
    """Lock a head row until the transaction ends; returns its (value, digest)."""
    row = conn.execute(
        sa.select(heads.c.value, heads.c.digest).where(heads.c.name == name).with_for_update()
    ).one()
    return int(row.value), row.digest


def store(conn: Connection, name: str, value: int, digest: str = "") -> None:
    conn.execute(sa.update(heads).where(heads.c.name == name).values(value=value, digest=digest))


def current(conn: Connection, name: str = CHANGES) -> int:
    """The committed head value (no lock)."""
    return int(conn.execute(sa.select(heads.c.value).where(heads.c.name == name)).scalar_one())
