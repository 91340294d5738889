"""The feed: every change after a cursor, in cursor order, never skipping one.

Reads are bounded by the committed head (see `heads`): every change up to the head is committed, so
a reader that resumes from the returned `next` sees each change exactly once and in order, however
many writers are committing. Upserts carry the item's current document; withdrawals are tombstones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from hashhub import db, signals
from hashhub.hub import access, audit, auth, heads
from hashhub.hub.core import Hub
from hashhub.hub.errors import Invalid
from hashhub.hub.models import changes, fingerprints_have, items, organisations


@dataclass(frozen=True, slots=True)
class FeedFilter:
    lists: Sequence[str] | None = None
    signals: Sequence[str] | None = None
    grading: Sequence[str] | None = None  # "scheme:value" or "value"
    contributors: Sequence[str] | None = None


def _conditions(conn: sa.Connection, f: FeedFilter) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if f.signals:
        try:
            names = [signals.get(s).name for s in f.signals]
        except signals.SignalError as exc:
            raise Invalid(f"Unknown signal filter: {exc}.") from None
        where.append(sa.or_(*(fingerprints_have(name) for name in names)))
    if f.grading:
        grades = []
        for g in f.grading:
            scheme, sep, value = g.rpartition(":")
            test = items.c.classification == value
            grades.append(sa.and_(items.c.scheme == scheme, test) if sep else test)
        where.append(sa.or_(*grades))
    if f.contributors:
        ids = conn.execute(
            sa.select(organisations.c.id).where(organisations.c.name.in_(list(f.contributors)))
        ).scalars()
        where.append(items.c.contributor_id.in_(list(ids)))
    return where


def read(hub: Hub, principal: auth.Principal, after: int, limit: int, f: FeedFilter) -> bytes:
    """The feed page as JSON bytes: `{"changes": [...], "next": C, "has_more": bool}`."""
    if after < 0:
        raise Invalid("'after' must be a cursor of 0 or more.")
    if not 1 <= limit <= hub.settings.feed_max_limit:
        raise Invalid(f"'limit' must be between 1 and {hub.settings.feed_max_limit}.")
    with db.read(hub.engine) as conn:
        readable = access.readable_lists(conn, principal, f.lists)
        head = heads.current(conn)  # read first: everything up to it is committed
        q = (
            sa.select(changes.c.cursor, changes.c.op, changes.c.item_id, items.c.doc)
            .join(items, items.c.id == changes.c.item_id)
            .where(
                changes.c.cursor > after,
                changes.c.cursor <= head,
                items.c.list_id.in_(list(readable)),
                *_conditions(conn, f),
            )
            .order_by(changes.c.cursor)
            .limit(limit + 1)
        )
        rows = conn.execute(q).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    parts = []
    for cursor, op, item_id, doc in rows:
        if op == "delete":
            parts.append(b'{"cursor":%d,"op":"delete","id":"%d"}' % (cursor, item_id))
        else:
            parts.append(b'{"cursor":%d,"op":"upsert","item":%s}' % (cursor, doc))
    nxt = rows[-1].cursor if has_more else max(after, head)
    audit.record_now(
        hub.engine,
        principal.org,
        "feed.read",
        ",".join(sorted(readable.values())),
        {"after": after, "changes": len(rows), "next": nxt},
    )
    return b'{"changes":[%s],"next":%d,"has_more":%s}' % (
        b",".join(parts),
        nxt,
        b"true" if has_more else b"false",
    )
