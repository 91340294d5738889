"""The pool in memory: every live item's fingerprints in `hashhub.index` structures, the few fields a
match answers with, and clusters, kept current by following the change log by cursor.

Match answers from it alone, after `catch_up(conn)` has read the changes committed since the pool's
cursor (a few rows normally; everything in bulk after a big import). Writers never wait for it, and
any number of hub processes can each hold one. Applying an item's current row is idempotent, so
reading a row newer than the head is harmless.

Clusters: items sharing an exact fingerprint, or with PDQ hashes within `cluster radius` of each
other, are linked; a cluster is a connected group of links (union-find). Linking depends only on the
set of live items, not on arrival order, so every process derives the same clusters. Withdrawing or
changing an item recomputes its old cluster without it.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hashhub import signals
from hashhub.hub import heads, indexes
from hashhub.hub.models import changes, fingerprints, items, lists, organisations

STATUS = {"active": 1, "disputed": 2, "withdrawn": 3}
STATUS_NAMES = {v: k for k, v in STATUS.items()}
_ABSENT = 0
_CHUNK = 5000
_FETCH = 50_000


@dataclass(slots=True)
class ItemRecord:
    """An item's current state, as far as matching and clustering care."""

    id: int
    list_id: int
    contributor_id: int
    status: str
    scheme: str
    classification: str
    reviewers: int
    fp_key: int
    fingerprints: dict[str, str]


class _Column:
    """A numpy column indexed by item id that grows as ids do."""

    def __init__(self, dtype: type) -> None:
        self.data = np.zeros(1024, dtype=dtype)

    def ensure(self, size: int) -> None:
        if size > len(self.data):
            grown = np.zeros(max(size, 2 * len(self.data)), dtype=self.data.dtype)
            grown[: len(self.data)] = self.data
            self.data = grown


class Pool:
    def __init__(self, fetch: Fetch, cluster_radius: dict[str, float] | None = None) -> None:
        #: reads the stored fingerprints of some items (only needed to recompute changed clusters).
        self._fetch = fetch
        #: held while reading or changing the pool; ingest holds it across its whole transaction.
        self.lock = threading.RLock()
        self.cursor = -1  # -1: nothing loaded yet
        self._cluster_radius = {"exact": 0, "hamming": 10, "vector": 0, "video": 0, **(cluster_radius or {})}
        self._cols = {name: _Column(dt) for name, dt in _COLUMNS.items()}
        self._grades: list[dict[str, str]] = []
        self._grade_ids: dict[tuple[str, str], int] = {}
        self._indexes: dict[str, Any] = {}
        self._signals_of: dict[int, tuple[str, ...]] = {}
        self._parent = _Column(np.int64)
        self._members: dict[int, list[int]] = {}
        self.org_names: dict[int, str] = {}
        self.list_names: dict[int, str] = {}

    # -- reading ------------------------------------------------------------------------------

    def _col(self, name: str) -> np.ndarray:
        return self._cols[name].data

    def status(self, item_id: int) -> str | None:
        data = self._col("status")
        code = int(data[item_id]) if 0 <= item_id < len(data) else _ABSENT
        return STATUS_NAMES.get(code)

    def near(self, signal: str, values: Sequence[str], radius: float) -> indexes.Hits:
        adapter = self._indexes.get(signal)
        if adapter is None:
            return [(np.empty(0, np.int64), np.empty(0, np.int32)) for _ in values]
        return adapter.near(values, radius)

    def find(self, item_id: int) -> int:
        parent = self._parent.data
        while parent[item_id] != item_id:
            parent[item_id] = parent[parent[item_id]]
            item_id = int(parent[item_id])
        return item_id

    def cluster(self, item_id: int) -> list[int]:
        return self._members.get(self.find(item_id), [item_id])

    def describe(self, item_id: int, readable: set[int] | None) -> dict[str, Any]:
        """Fields a match reports for one item; cluster facts only from lists the caller may read."""
        lst, contrib, rev, status = (self._col(c) for c in ("list", "contributor", "reviewers", "status"))
        members = [
            m
            for m in self.cluster(item_id)
            if status[m] != STATUS["withdrawn"] and (readable is None or int(lst[m]) in readable)
        ]
        verifiers = {int(contrib[m]) for m in members if rev[m] > 0}
        return {
            "item": str(item_id),
            "list": self.list_names.get(int(lst[item_id]), ""),
            "classification": self._grades[int(self._col("grade")[item_id])],
            "contributors": sorted({self.org_names.get(int(contrib[m]), "") for m in members}),
            "verifications": len(verifiers),
            "cluster": str(self.find(item_id)),
            "cluster_size": len(members),
            "status": STATUS_NAMES[int(status[item_id])],
        }

    def readable_live(self, ids: np.ndarray, readable: set[int] | None) -> np.ndarray:
        """Mask of ids that are live and (when `readable` is given) in a readable list."""
        ok = self._col("status")[ids] != STATUS["withdrawn"]
        if readable is not None:
            ok &= np.isin(self._col("list")[ids], np.fromiter(readable, dtype=np.int32))
        return ok

    # -- following the change log ------------------------------------------------------------

    def catch_up(self, conn: Connection) -> int:
        """Apply every change committed after our cursor; returns the new cursor."""
        with self.lock:
            head = heads.current(conn)
            if self.cursor < 0 or head > self.cursor:
                self._load_names(conn)
                self.apply(_records(conn, None if self.cursor < 0 else (self.cursor, head)))
            self.cursor = max(self.cursor, head)
            return self.cursor

    def _load_names(self, conn: Connection) -> None:
        self.org_names = dict(conn.execute(sa.select(organisations.c.id, organisations.c.name)).all())
        self.list_names = dict(conn.execute(sa.select(lists.c.id, lists.c.name)).all())

    def apply(self, records: Iterable[ItemRecord]) -> None:
        """Make the pool reflect these items' current rows (idempotent)."""
        with self.lock:
            self._apply(list(records))

    def _apply(self, records: list[ItemRecord]) -> None:
        if not records:
            return
        fresh = not self._signals_of  # nothing indexed yet: the first load after start-up
        size = max(r.id for r in records) + 1
        for col in (*self._cols.values(), self._parent):
            col.ensure(size)
        status, keys = self._col("status"), self._col("fp_key")
        changed: list[int] = []  # live items whose fingerprints changed or that were withdrawn
        reindex: list[ItemRecord] = []  # items whose (new) fingerprints go into the indexes
        for r in records:
            known = status[r.id] != _ABSENT and status[r.id] != STATUS["withdrawn"]
            same_body = known and keys[r.id] == r.fp_key
            if known and not (same_body and r.status != "withdrawn"):
                changed.append(r.id)
            if r.status != "withdrawn" and not same_body:
                reindex.append(r)
            self._set_meta(r)
        old_members = {m for i in changed for m in self.cluster(i)}
        self._unindex(changed)
        self._index(reindex)
        # Recompute the clusters that lost or changed a member, then link the new and changed items.
        self._recluster(old_members)
        parent = self._parent.data
        for r in reindex:
            if r.id not in old_members:
                parent[r.id] = r.id
        for a, b in self._edges(reindex, fresh=fresh):
            self._union(a, b)

    def _set_meta(self, r: ItemRecord) -> None:
        grade = (r.scheme, r.classification)
        gid = self._grade_ids.get(grade)
        if gid is None:
            gid = self._grade_ids[grade] = len(self._grades)
            self._grades.append({"scheme": r.scheme, "value": r.classification})
        cols = self._cols
        cols["list"].data[r.id] = r.list_id
        cols["contributor"].data[r.id] = r.contributor_id
        cols["reviewers"].data[r.id] = r.reviewers
        cols["status"].data[r.id] = STATUS[r.status]
        cols["grade"].data[r.id] = gid
        cols["fp_key"].data[r.id] = r.fp_key

    def _unindex(self, ids: list[int]) -> None:
        by_signal: dict[str, list[int]] = defaultdict(list)
        for i in ids:
            for s in self._signals_of.pop(i, ()):
                by_signal[s].append(i)
        for s, sids in by_signal.items():
            self._indexes[s].remove(np.asarray(sids, dtype=np.int64))

    def _index(self, records: list[ItemRecord]) -> None:
        by_signal: dict[str, tuple[list[int], list[str]]] = defaultdict(lambda: ([], []))
        for r in records:
            self._signals_of[r.id] = tuple(r.fingerprints)
            for s, v in r.fingerprints.items():
                ids, values = by_signal[s]
                ids.append(r.id)
                values.append(v)
        for s, (ids, values) in by_signal.items():
            adapter = self._indexes.get(s)
            if adapter is None:
                adapter = self._indexes[s] = indexes.for_signal(s)
            adapter.add(np.asarray(ids, dtype=np.int64), values)

    def _edges(self, records: list[ItemRecord], *, fresh: bool = False) -> Iterable[tuple[int, int]]:
        """Pairs of items to link. `fresh`: the records are all the pool holds, so items sharing an
        exact value are found by grouping the values, without one index search per value (the
        searches took most of a million-item start-up)."""
        by_signal: dict[str, tuple[list[int], list[str]]] = defaultdict(lambda: ([], []))
        for r in records:
            for s, v in r.fingerprints.items():
                ids, values = by_signal[s]
                ids.append(r.id)
                values.append(v)
        for s, (ids, values) in by_signal.items():
            kind = signals.get(s).index_kind
            if fresh and kind == "exact":
                yield from _same_value_pairs(ids, values)
                continue
            radius = self._cluster_radius[kind]
            for i, (found, _) in zip(ids, self._indexes[s].near(values, radius), strict=True):
                for j in found:
                    if j != i:
                        yield i, int(j)

    def _union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        ma, mb = self._members.pop(ra, [ra]), self._members.pop(rb, [rb])
        if len(ma) < len(mb):
            ra, rb, ma, mb = rb, ra, mb, ma
        self._parent.data[rb] = ra
        ma.extend(mb)
        self._members[ra] = ma

    def _recluster(self, members: set[int]) -> None:
        if not members:
            return
        parent, status = self._parent.data, self._col("status")
        for m in members:
            self._members.pop(m, None)
            parent[m] = m
        live = [m for m in members if status[m] != STATUS["withdrawn"] and m in self._signals_of]
        if len(live) < 2:
            return
        stored = self._fetch(live)
        records = [ItemRecord(m, 0, 0, "active", "", "", 0, 0, stored.get(m, {})) for m in live]
        member_set = set(live)
        for a, b in self._edges(records):
            if b in member_set:
                self._union(a, b)


Fetch = Callable[[list[int]], dict[int, dict[str, str]]]


def _same_value_pairs(ids: list[int], values: list[str]) -> Iterator[tuple[int, int]]:
    """Each item linked to the first item with the same canonical value (enough for union-find)."""
    first: dict[str, int] = {}
    for i, v in zip(ids, values, strict=True):
        j = first.setdefault(v, i)
        if j != i:
            yield i, j


def _fetched(conn: Connection, query: sa.Select) -> Iterator[sa.Row[Any]]:
    """Rows fetched in large slices (a full load reads millions; row-at-a-time fetching doubled it)."""
    result = conn.execution_options(yield_per=_FETCH).execute(query)
    for part in result.partitions():
        yield from part


_COLUMNS = {
    "list": np.int32,
    "contributor": np.int32,
    "reviewers": np.int32,
    "status": np.int8,
    "grade": np.int32,
    "fp_key": np.int64,
}


def fingerprints_of(conn: Connection, ids: list[int]) -> dict[int, dict[str, str]]:
    fps: dict[int, dict[str, str]] = defaultdict(dict)
    for i in range(0, len(ids), _CHUNK):
        q = sa.select(fingerprints.c.item_id, fingerprints.c.signal, fingerprints.c.value).where(
            fingerprints.c.item_id.in_(ids[i : i + _CHUNK])
        )
        for item_id, signal, value in conn.execute(q).all():
            fps[item_id][signal] = value
    return fps


def _records(conn: Connection, window: tuple[int, int] | None) -> list[ItemRecord]:
    """Current rows (and fingerprints) of the items changed in the cursor window (after, upto], or of
    every item when `window` is None; two queries however many items changed."""
    cols = (
        items.c.id,
        items.c.list_id,
        items.c.contributor_id,
        items.c.status,
        items.c.scheme,
        items.c.classification,
        items.c.reviewers,
        items.c.fp_key,
    )
    item_q = sa.select(*cols)
    fp_q = sa.select(fingerprints.c.item_id, fingerprints.c.signal, fingerprints.c.value)
    if window is not None:
        changed = (
            sa.select(changes.c.item_id)
            .where(changes.c.cursor > window[0], changes.c.cursor <= window[1])
            .distinct()
            .subquery()
        )
        item_q = item_q.join(changed, changed.c.item_id == items.c.id)
        fp_q = fp_q.join(changed, changed.c.item_id == fingerprints.c.item_id)
    fps: dict[int, dict[str, str]] = defaultdict(dict)
    for item_id, signal, value in _fetched(conn, fp_q):
        fps[item_id][signal] = value
    return [ItemRecord(*row, fingerprints=fps.get(row[0], {})) for row in _fetched(conn, item_q)]
