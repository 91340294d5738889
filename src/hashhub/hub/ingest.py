"""Batch submit: rows parsed by `hashhub.hub.rows`, deduped and written in one transaction (or in
the caller's, which `hashhub hub import` commits every few batches: `hashhub.hub.grouped`).

Idempotent: a row whose (contributor, external id) exists updates that item only if something
changed; a row with exactly the fingerprints of a live item of the same contributor is that item.
Atomic: any invalid row rejects the whole batch unless `partial` is set, in which case the valid rows
are written and exactly the invalid ones are listed. Dedup costs two indexed lookups per batch (by
external id, by fingerprint-set digest in `item_fp_keys`); clustering is left to the in-memory pool,
which follows the change log on its own (`Pool.catch_up`), so a write never waits for index
maintenance.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hashhub import db, grading
from hashhub.hub import audit, auth, documents, gcpause, heads, orgs
from hashhub.hub.core import Hub
from hashhub.hub.errors import Forbidden, Invalid
from hashhub.hub.models import changes, item_fp_keys, items
from hashhub.hub.rows import Row, fingerprint_key, parse_rows

__all__ = [
    "Row", "Target", "fingerprint_key", "parse_rows", "submit", "submit_parsed", "target", "write_rows",
]  # fmt: skip

#: keys per dedup lookup: a whole batch in one statement (every statement hands the GIL over;
#: see `_insert_many`), below both stores' parameter limits
_LOOKUP_CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class Target:
    """A list the caller may write to, and the grading schemes rows are checked against."""

    list_id: int
    list_name: str
    schemes: dict[str, grading.Scheme]


def target(hub: Hub, principal: auth.Principal, list_name: str) -> Target:
    """The write target for `principal`, or Forbidden; read fresh for every batch, so a grant
    revoked or a scheme added during a long import applies from the next batch on."""
    principal.require("contributor")
    with db.read(hub.engine) as conn:
        writable = auth.granted_lists(conn, principal.org_id, write=True)
        list_id = orgs.list_id(conn, list_name) if isinstance(list_name, str) else None
        schemes = orgs.load_schemes(conn)
    if list_id is None or list_id not in writable:
        raise Forbidden(f"Organisation {principal.org!r} may not write to list {list_name!r}.")
    return Target(list_id, list_name, schemes)


def submit(
    hub: Hub,
    principal: auth.Principal,
    list_name: str,
    rows: Sequence[object],
    *,
    partial: bool = False,
    actor: str | None = None,
) -> dict[str, Any]:
    """Validate and write one batch; see the module docstring for the rules."""
    principal.require("contributor")
    if not isinstance(rows, list | tuple):
        raise Invalid("'items' must be a list of item objects.")
    if len(rows) > hub.settings.max_batch:
        raise Invalid(f"A batch holds at most {hub.settings.max_batch} items; this one has {len(rows)}.")
    where = target(hub, principal, list_name)
    # A batch's parse makes ~10 objects a row and its answer two more, all acyclic (see gcpause);
    # left running, the collector's passes while the answer was built cost ~0.7 us an item (measured
    # at 10,000 a batch, with the batch and its rows alive).
    with gcpause.paused():
        good, rejected = parse_rows(rows, where.schemes)
        result = submit_parsed(hub, principal, where, good, rejected, len(rows), partial=partial, actor=actor)
        ids = result.pop("ids")
        result["items"] = [{"index": r.index, "id": str(i)} for r, i in zip(good, ids, strict=True)]
    return result


def submit_parsed(
    hub: Hub,
    principal: auth.Principal,
    where: Target,
    good: list[Row],
    rejected: list[dict[str, Any]],
    total: int,
    *,
    partial: bool = False,
    actor: str | None = None,
    conn: Connection | None = None,
) -> dict[str, Any]:
    """Write rows `parse_rows` made of a batch of `total` (the importer parses the next batch
    in another thread meanwhile); the result is `submit`'s with `ids` (one per good row) in
    place of `items`. In `conn`'s write transaction when given (see `write_rows`)."""
    if rejected and not partial:
        raise Invalid(
            f"{len(rejected)} of {total} items were rejected, so none were written "
            "(fix them, or send ?partial=true to write the valid ones).",
            rejected=rejected,
        )
    written = write_rows(
        hub, principal, where.list_id, where.list_name, good, actor=actor or principal.org, conn=conn
    )
    return {
        "accepted": len(good),
        "ids": written["ids"],
        "rejected": rejected,
        "created": written["created"],
        "updated": written["updated"],
        "unchanged": len(good) - written["created"] - written["updated"],
        "cursor": written["cursor"],
    }


# Plain SQL with a run of placeholders, sent to the driver: compiling an expanding IN of 2,000
# values through SQLAlchemy cost more per item than the index probes themselves.
_BY_EXTERNAL = (
    "SELECT id, external_id, status, created_at, doc FROM items "
    "WHERE contributor_id = {mark} AND external_id IN ({marks})"
)
# An `item_fp_keys` entry may be stale (its item changed fingerprints or was withdrawn since):
# the item must still have that key and be live.
_BY_FP_KEY = (
    "SELECT k.fp_key, i.id FROM item_fp_keys k JOIN items i ON i.id = k.item_id "
    "WHERE k.contributor_id = {mark} AND k.fp_key IN ({marks}) "
    "AND i.fp_key = k.fp_key AND i.status != 'withdrawn'"
)


def _lookup(conn: Connection, query: str, contributor_id: int, keys: list[Any]) -> list[sa.Row[Any]]:
    mark = _mark(conn)
    rows: list[sa.Row[Any]] = []
    for i in range(0, len(keys), _LOOKUP_CHUNK):
        chunk = keys[i : i + _LOOKUP_CHUNK]
        sql = query.format(mark=mark, marks=", ".join([mark] * len(chunk)))
        rows.extend(conn.exec_driver_sql(sql, (contributor_id, *chunk)))
    return rows


def _mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _existing(conn: Connection, contributor_id: int, external_ids: list[str]) -> dict[str, Any]:
    """This contributor's items by external id."""
    return {r.external_id: r for r in _lookup(conn, _BY_EXTERNAL, contributor_id, external_ids)}


def _same_fingerprints(conn: Connection, contributor_id: int, keys: list[int]) -> dict[int, int]:
    """Live items of this contributor by fingerprint-set digest (an identical resubmission)."""
    return {r.fp_key: r.id for r in _lookup(conn, _BY_FP_KEY, contributor_id, keys)}


ITEM_COLUMNS = (
    "id", "list_id", "contributor_id", "external_id", "content_type", "scheme", "classification",
    "reviewers", "status", "fp_key", "created_at", "updated_at", "doc", "fingerprints", "quality",
)  # fmt: skip
CHANGE_COLUMNS = ("cursor", "item_id", "op", "kind", "at")
FP_KEY_COLUMNS = ("contributor_id", "fp_key", "item_id")
_FP_KEY = ITEM_COLUMNS.index("fp_key")


def write_rows(
    hub: Hub,
    principal: auth.Principal,
    list_id: int,
    list_name: str,
    rows: list[Row],
    actor: str,
    conn: Connection | None = None,
) -> dict[str, Any]:
    """Write validated rows in one transaction that holds the feed cursor; returns ids per row.

    The transaction is `conn`'s when given (an import commits several batches at once, see
    `hashhub.hub.grouped`), else one of its own. Every row becomes one `items` row (its
    fingerprints are columns) and one `changes` row. New items get consecutive ids and consecutive
    cursors, so their change rows are made by one INSERT ... SELECT inside the database rather
    than a tuple each in Python."""
    transaction = db.write(hub.engine) if conn is None else contextlib.nullcontext(conn)
    with gcpause.paused(), transaction as writing:
        return _write(writing, principal, list_id, list_name, rows, actor)


def _write(
    conn: Connection, principal: auth.Principal, list_id: int, list_name: str, rows: list[Row], actor: str
) -> dict[str, Any]:
    me = principal.org_id
    head, _ = heads.lock(conn, heads.CHANGES)
    # Stamped only once we hold the cursor: a write that waited on the lock must not commit with
    # a time seconds older than writes that committed before it (time-window readers page by it).
    now = time.time()
    existing = _existing(conn, me, sorted({r.external_id for r in rows if r.external_id}))
    same = _same_fingerprints(conn, me, sorted({r.fp_key for r in rows}))
    first_id = (conn.execute(sa.select(sa.func.max(items.c.id))).scalar() or 0) + 1
    new_rows, updates, ids = _plan(me, rows, existing, same, first_id)
    head_json = documents.head(list_name, principal.org)
    _insert_many(conn, items, ITEM_COLUMNS, _item_rows(new_rows, list_id, me, "active", now, now, head_json))
    # Sorted by key: the dedup index takes a batch in one pass over its pages (see models).
    _insert_many(conn, item_fp_keys, FP_KEY_COLUMNS, sorted((me, r.fp_key, i) for i, r in new_rows.items()))
    cursor = head + len(new_rows)
    if new_rows:
        _new_changes(conn, first_id, len(new_rows), head + 1, now)
    changed: list[tuple] = []
    for item_id, row, old in updates:
        if old.status != "withdrawn" and _same_fields(old.doc, row.fields(item_id, list_name, principal.org)):
            continue  # same content resubmitted: nothing changes, no feed entry
        status = "active" if old.status == "withdrawn" else old.status
        changed += _item_rows({item_id: row}, list_id, me, status, old.created_at, now, head_json)
    if changed:
        _update_items(conn, changed)
        _add_fp_keys(conn, sorted({(me, r[_FP_KEY], r[0]) for r in changed}))
        rows_of_changes = [(cursor + n, r[0], "upsert", "updated", now) for n, r in enumerate(changed, 1)]
        _insert_many(conn, changes, CHANGE_COLUMNS, rows_of_changes)
        cursor += len(changed)
    if cursor != head:
        heads.store(conn, heads.CHANGES, cursor)
    audit.record(
        conn,
        actor,
        "items.submit",
        list_name,
        {"rows": len(rows), "changes": cursor - head, "from": head + 1, "to": cursor},
    )
    return {"ids": ids, "created": len(new_rows), "updated": len(changed), "cursor": cursor}


def _item_rows(
    rows: dict[int, Row], list_id: int, me: int, status: str, created: float, now: float, head: bytes
) -> list[tuple]:
    """`items` rows in ITEM_COLUMNS order for rows by item id that share a status and times.

    One comprehension, no call a row but the document's join: a call each for the tuple and the
    document cost 0.95 against 0.53 us a row (measured, 10,000 new rows)."""
    tail = documents.tail(status, created, now)
    join = documents.join
    return [
        (
            item_id, list_id, me, row.external_id, row.content_type, row.scheme, row.classification,
            row.reviewers, status, row.fp_key, created, now, join(item_id, head, row.body, tail),
            row.fingerprints_json, orjson.dumps(row.quality).decode() if row.quality else None,
        )
        for item_id, row in rows.items()
    ]  # fmt: skip


def _same_fields(doc: bytes, fields: dict[str, Any]) -> bool:
    stored = orjson.loads(doc)
    for key in documents.SERVER_FIELDS:
        stored.pop(key, None)
    return stored == orjson.loads(orjson.dumps(fields))


def _plan(
    me: int, rows: list[Row], existing: dict[str, Any], same: dict[int, int], next_id: int
) -> tuple[dict[int, Row], list[tuple[int, Row, Any]], list[int]]:
    """Decide per row: new item, update of an existing one, or the same as one already there.

    New items come back by id in id order (consecutive from `next_id`)."""
    new: dict[int, Row] = {}
    updates: dict[int, tuple[int, Row, Any]] = {}
    ids: list[int] = []
    by_external: dict[str, int] = {}
    by_fp: dict[int, int] = {}
    for row in rows:
        ext = row.external_id
        item_id = by_external.get(ext) if ext is not None else None
        if item_id is not None:  # repeated in this batch: the later row wins
            if item_id in updates:
                updates[item_id] = (item_id, row, updates[item_id][2])
            elif item_id in new:
                new[item_id] = row
        elif ext is not None and ext in existing:
            old = existing[ext]
            item_id = int(old.id)
            updates[item_id] = (item_id, row, old)
            by_external[ext] = item_id
        else:
            key = row.fp_key
            item_id = by_fp.get(key)
            if item_id is None:
                item_id = same.get(key)
            if item_id is None:
                item_id = next_id
                next_id += 1
                new[item_id] = row
                by_fp[key] = item_id
            if ext is not None:
                by_external[ext] = item_id
        ids.append(item_id)
    return new, list(updates.values()), ids


#: bound parameters in one statement: SQLite's limit (32,766) is the lower of the two stores'
_MAX_PARAMS = 32_766


def _insert_many(conn: Connection, table: sa.Table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert rows with a few multi-row INSERT statements, straight to the driver.

    Not executemany: the sqlite3 module releases the GIL around every row it steps, and each time
    another busy thread (the import's parser) takes it, the writer waits up to the interpreter's
    switch interval (5 ms) to get it back; measured, a busy thread beside the writer made it 2.6
    times slower. One statement per 2,000 rows hands the GIL over a handful of times a batch. And
    not SQLAlchemy: its per-row parameter processing cost more than the insert itself."""
    if not rows:
        return
    mark = _mark(conn)
    one = f"({', '.join([mark] * len(columns))})"
    head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
    step = _MAX_PARAMS // len(columns)
    for i in range(0, len(rows), step):
        chunk = rows[i : i + step]
        conn.exec_driver_sql(head + ", ".join([one] * len(chunk)), tuple(chain.from_iterable(chunk)))


def _new_changes(conn: Connection, first_id: int, count: int, first_cursor: int, now: float) -> None:
    """`new` changes for the items first_id .. first_id + count - 1, cursors from first_cursor on."""
    mark = _mark(conn)
    conn.exec_driver_sql(
        f"INSERT INTO changes (cursor, item_id, op, kind, at) "
        f"SELECT id + {mark}, id, 'upsert', 'new', {mark} FROM items WHERE id >= {mark} AND id < {mark}",
        (first_cursor - first_id, now, first_id, first_id + count),
    )


def _update_items(conn: Connection, rows: list[tuple]) -> None:
    """Rewrite whole items rows (ITEM_COLUMNS order) in place, keyed by their id."""
    mark = _mark(conn)
    sets = ", ".join(f"{c} = {mark}" for c in ITEM_COLUMNS[1:])
    conn.exec_driver_sql(f"UPDATE items SET {sets} WHERE id = {mark}", [(*r[1:], r[0]) for r in rows])


def _add_fp_keys(conn: Connection, entries: list[tuple[int, int, int]]) -> None:
    """Dedup index entries for updated items; an entry already there (the key did not change) stays."""
    mark = _mark(conn)
    conn.exec_driver_sql(
        f"INSERT INTO item_fp_keys (contributor_id, fp_key, item_id) VALUES ({mark}, {mark}, {mark}) "
        "ON CONFLICT DO NOTHING",
        entries,
    )
