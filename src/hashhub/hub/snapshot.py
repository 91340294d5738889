"""The snapshot: every live item of the caller's lists as NDJSON, first line `{"cursor": C}`.

Read in one consistent transaction (REPEATABLE READ on PostgreSQL, one read transaction on SQLite),
so the items are exactly the state at cursor C and a member continues with `feed?after=C`. Documents
are stored ready-made, so this streams bytes; gzip level 1 keeps compression off the critical path.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence

import sqlalchemy as sa

from hashhub import db
from hashhub.hub import access, audit, auth, heads
from hashhub.hub.core import Hub
from hashhub.hub.models import items

_ROWS_PER_CHUNK = 5000  # about 1.5 MB of documents: few, large writes


def open_stream(
    hub: Hub, principal: auth.Principal, lists: Sequence[str] | None = None, *, gzip: bool = False
) -> Iterator[bytes]:
    """Check access now (errors before any byte is sent) and return the chunk iterator."""
    with db.read(hub.engine) as conn:
        readable = access.readable_lists(conn, principal, lists)
    audit.record_now(hub.engine, principal.org, "snapshot.read", ",".join(sorted(readable.values())))
    chunks = _lines(hub, list(readable))
    return _gzip(chunks) if gzip else chunks


def _lines(hub: Hub, list_ids: list[int]) -> Iterator[bytes]:
    with db.read(hub.engine, snapshot=True) as conn:
        yield b'{"cursor": %d}\n' % heads.current(conn)
        for docs in _documents(conn, list_ids):
            docs.append(b"")  # the last line's newline
            yield b"\n".join(docs)


def _documents(conn: sa.Connection, list_ids: list[int]) -> Iterator[list[bytes]]:
    """The stored documents of the live items of `list_ids` in id order, a slice at a time."""
    if db.is_sqlite(conn):
        # The driver's own cursor on the transaction's connection: a million rows through
        # SQLAlchemy's result machinery cost more than reading them. (SQLite steps through the
        # rows as they are fetched, so this streams like a server-side cursor.)
        marks = ", ".join("?" * len(list_ids))
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(
                f"SELECT doc FROM items WHERE list_id IN ({marks}) AND status != 'withdrawn' ORDER BY id",
                list_ids,
            )
            while rows := cursor.fetchmany(_ROWS_PER_CHUNK):
                yield [doc for (doc,) in rows]
        finally:
            cursor.close()
        return
    q = (
        sa.select(items.c.doc)
        .where(items.c.list_id.in_(list_ids), items.c.status != "withdrawn")
        .order_by(items.c.id)
    )
    result = conn.execution_options(yield_per=_ROWS_PER_CHUNK).execute(q)  # a server-side cursor
    for part in result.scalars().partitions():
        yield list(part)


def _gzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = packer.compress(chunk)
        if out:
            yield out
    yield packer.flush()
