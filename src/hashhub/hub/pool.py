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

Storage: per-item facts and clusters are numpy columns indexed by item id (hub/columns.py), never a
Python object per item, so a pool can be saved and memory-mapped back by every process
(hub/poolfile.py); `stats()` counts the dashboard's figures from the same columns.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hashhub import signals
from hashhub.hub import heads, indexes
from hashhub.hub.columns import MAX_GRADES, MAX_SIGNALS, Clusters, Columns
from hashhub.hub.models import changes, items, lists, organisations

STATUS = {"active": 1, "disputed": 2, "withdrawn": 3}
STATUS_NAMES = {v: k for k, v in STATUS.items()}
_ABSENT = 0
_WITHDRAWN = STATUS["withdrawn"]
_CHUNK = 5000
_FETCH = 50_000
_DAY = 86_400
#: days in Pool.stats()'s growth series
STATS_DAYS = 30


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
    created_at: float = 0.0


class Pool:
    def __init__(self, fetch: Fetch, cluster_radius: dict[str, float] | None = None) -> None:
        #: reads the stored fingerprints of some items (only needed to recompute changed clusters).
        self._fetch = fetch
        #: held while reading or changing the pool; ingest holds it across its whole transaction.
        self.lock = threading.RLock()
        self.cursor = -1  # -1: nothing loaded yet
        self.cluster_radius = {"exact": 0, "hamming": 10, "vector": 0, "video": 0, **(cluster_radius or {})}
        self.cols = Columns()
        self.clusters = Clusters(self.cols)
        self.grades: list[dict[str, str]] = []
        self._grade_ids: dict[tuple[str, str], int] = {}
        #: signal name -> its bit in the `signals` column
        self.signal_bits: dict[str, int] = {}
        self.indexes: dict[str, indexes.Adapter] = {}
        self.org_names: dict[int, str] = {}
        self.list_names: dict[int, str] = {}
        #: the next apply re-indexes every item it touches (set after loading saved files, whose
        #: indexes may hold changes a little newer than their columns)
        self.replay_all = False

    def restore(
        self,
        cols: Columns,
        *,
        grades: list[dict[str, str]],
        signal_bits: dict[str, int],
        adapters: dict[str, indexes.Adapter],
        org_names: dict[int, str],
        list_names: dict[int, str],
        cursor: int,
    ) -> None:
        """Take over saved state (see hub/poolfile.py); the next apply re-indexes what it replays."""
        with self.lock:
            self.cols, self.clusters = cols, Clusters(cols)
            self.grades = grades
            self._grade_ids = {(g["scheme"], g["value"]): i for i, g in enumerate(grades)}
            self.signal_bits, self.indexes = signal_bits, adapters
            self.org_names, self.list_names = org_names, list_names
            self.cursor, self.replay_all = cursor, True

    # -- reading ------------------------------------------------------------------------------

    def _col(self, name: str) -> np.ndarray:
        return self.cols[name]

    def __len__(self) -> int:
        """Live items (active or disputed) with at least one indexed fingerprint."""
        n = self.cols.size
        live = self._live_mask(n)
        return int(np.count_nonzero(live & (self._col("signals")[:n] != 0)))

    def _live_mask(self, n: int) -> np.ndarray:
        status = self._col("status")[:n]
        return (status != _ABSENT) & (status != _WITHDRAWN)

    def status(self, item_id: int) -> str | None:
        data = self._col("status")
        code = int(data[item_id]) if 0 <= item_id < self.cols.size else _ABSENT
        return STATUS_NAMES.get(code)

    def near(self, signal: str, values: Sequence[str], radius: float) -> indexes.Hits:
        adapter = self.indexes.get(signal)
        if adapter is None:
            return [(np.empty(0, np.int64), np.empty(0, np.int32)) for _ in values]
        return adapter.near(values, radius)

    def find(self, item_id: int) -> int:
        return self.clusters.find(item_id)

    def cluster(self, item_id: int) -> list[int]:
        return self.clusters.members(item_id)

    def describe(self, item_id: int, readable: set[int] | None) -> dict[str, Any]:
        """Fields a match reports for one item; cluster facts only from lists the caller may read."""
        lst, contrib, rev, status = (self._col(c) for c in ("list", "contributor", "reviewers", "status"))
        ring = self.cluster(item_id)
        members = [
            m for m in ring if status[m] != _WITHDRAWN and (readable is None or int(lst[m]) in readable)
        ]
        verifiers = {int(contrib[m]) for m in members if rev[m] > 0}
        return {
            "item": str(item_id),
            "list": self.list_names.get(int(lst[item_id]), ""),
            "classification": self.grades[int(self._col("grade")[item_id])],
            "contributors": sorted({self.org_names.get(int(contrib[m]), "") for m in members}),
            "verifications": len(verifiers),
            # an item alone in its ring is its own root: most hits then never read `parent`
            "cluster": str(item_id if len(ring) == 1 else self.find(item_id)),
            "cluster_size": len(members),
            "status": STATUS_NAMES[int(status[item_id])],
        }

    def readable_live(self, ids: np.ndarray, readable: set[int] | None) -> np.ndarray:
        """Mask of ids that are live and (when `readable` is given) in a readable list."""
        ids = np.asarray(ids, dtype=np.int64)
        inside = ids < self.cols.size
        status = np.where(inside, self._col("status")[np.where(inside, ids, 0)], _ABSENT)
        ok = (status != _ABSENT) & (status != _WITHDRAWN)
        if readable is not None:
            ok &= np.isin(self._col("list")[np.where(inside, ids, 0)], np.fromiter(readable, dtype=np.int32))
        return ok

    def stats(
        self, now: float | None = None, *, lists: Iterable[int] | None = None, contributor: int | None = None
    ) -> dict[str, Any]:
        """Dashboard counts from the columns alone (no database query): live items by list,
        contributor, grade and signal, all items by status, and live items created per day over
        the last STATS_DAYS days (UTC, oldest first, days without items included as 0).
        With `lists` (list ids) or `contributor` (an organisation id), only the items a visitor
        may see count: those in the lists, or contributed by the organisation."""
        from hashhub.hub import pool_stats  # its C counter: loaded on first use, as the indexes are

        today = int((time.time() if now is None else now) // _DAY)
        first = today - STATS_DAYS + 1
        with self.lock:
            counts = pool_stats.count(self.cols, first, STATS_DAYS, lists, contributor)
            lists, orgs, grades = dict(self.list_names), dict(self.org_names), list(self.grades)
            bits = dict(self.signal_bits)

        def named(found: np.ndarray, name: Callable[[int], str]) -> dict[str, int]:
            return {name(k): int(v) for k, v in enumerate(found.tolist()) if v}

        return {
            "items": counts.live,
            "by_status": {name: int(counts.by_status[code]) for name, code in STATUS.items()},
            "by_list": named(counts.by_list, lambda k: lists.get(k, str(k))),
            "by_contributor": named(counts.by_contributor, lambda k: orgs.get(k, str(k))),
            "by_grade": named(counts.by_grade, lambda k: "{scheme}:{value}".format(**grades[k])),
            "by_signal": {
                name: c for name, bit in bits.items() if (c := int(counts.by_bit[bit.bit_length() - 1]))
            },
            "per_day": [
                [time.strftime("%Y-%m-%d", time.gmtime((first + d) * _DAY)), int(c)]
                for d, c in enumerate(counts.per_day.tolist())
            ],
        }

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
        force, self.replay_all = self.replay_all, False
        fresh = not any(len(ix) for ix in self.indexes.values())  # the first load after start-up
        self.cols.ensure(max(r.id for r in records) + 1)
        status, keys = self._col("status"), self._col("fp_key")
        changed: list[int] = []  # live items whose fingerprints changed or that were withdrawn
        reindex: list[ItemRecord] = []  # items whose (new) fingerprints go into the indexes
        for r in records:
            known = status[r.id] != _ABSENT and status[r.id] != _WITHDRAWN
            same_body = known and keys[r.id] == r.fp_key and not force
            if known and not (same_body and r.status != "withdrawn"):
                changed.append(r.id)
            if r.status != "withdrawn" and not same_body:
                reindex.append(r)
        old_members = np.unique(np.fromiter((m for i in changed for m in self.cluster(i)), np.int64))
        if force:  # saved indexes may hold any of these ids under any signal
            self._purge(np.fromiter((r.id for r in records), np.int64, len(records)))
        else:
            self._unindex(np.asarray(changed, dtype=np.int64))
        self._set_meta(records)
        self._index(reindex)
        # Recompute the clusters that lost or changed a member, then link the new and changed items.
        self._recluster(old_members)
        new = np.fromiter((r.id for r in reindex), np.int64, len(reindex))
        self.clusters.reset(new[~np.isin(new, old_members)])
        for a, b in self._edges(reindex, fresh=fresh):
            self.clusters.union(a, b)

    def _set_meta(self, records: list[ItemRecord]) -> None:
        grade_of = self._grade_ids
        grade_ids = []
        for r in records:
            gid = grade_of.get((r.scheme, r.classification))
            if gid is None:
                if len(self.grades) >= MAX_GRADES:
                    raise RuntimeError(f"the pool holds at most {MAX_GRADES} distinct grades.")
                gid = grade_of[(r.scheme, r.classification)] = len(self.grades)
                self.grades.append({"scheme": r.scheme, "value": r.classification})
            grade_ids.append(gid)
        n = len(records)
        ids = np.fromiter((r.id for r in records), np.int64, n)
        cols = self.cols
        cols["list"][ids] = np.fromiter((r.list_id for r in records), np.int32, n)
        cols["contributor"][ids] = np.fromiter((r.contributor_id for r in records), np.int32, n)
        cols["reviewers"][ids] = np.fromiter((min(r.reviewers, 127) for r in records), np.int8, n)
        cols["status"][ids] = np.fromiter((STATUS[r.status] for r in records), np.int8, n)
        cols["grade"][ids] = np.asarray(grade_ids, dtype=np.int16)
        cols["fp_key"][ids] = np.fromiter((r.fp_key for r in records), np.int64, n)
        cols["day"][ids] = np.fromiter((max(0, int(r.created_at // _DAY)) for r in records), np.uint16, n)

    def _bit(self, signal: str) -> int:
        bit = self.signal_bits.get(signal)
        if bit is None:
            if len(self.signal_bits) >= MAX_SIGNALS:
                raise RuntimeError(f"the pool tracks at most {MAX_SIGNALS} signal types; this hub has more.")
            bit = self.signal_bits[signal] = 1 << len(self.signal_bits)
        return bit

    def _unindex(self, ids: np.ndarray) -> None:
        if not len(ids):
            return
        held = self._col("signals")[ids]
        for s, bit in self.signal_bits.items():
            gone = ids[(held & np.uint64(bit)) != 0]
            if len(gone) and s in self.indexes:
                self.indexes[s].remove(gone)
        self._col("signals")[ids] = 0

    def _purge(self, ids: np.ndarray) -> None:
        """Remove these ids from every index, whatever the columns say they hold."""
        for adapter in self.indexes.values():
            adapter.remove(ids)
        self._col("signals")[ids] = 0

    def _index(self, records: list[ItemRecord]) -> None:
        by_signal: dict[str, tuple[list[int], list[str]]] = defaultdict(lambda: ([], []))
        for r in records:
            for s, v in r.fingerprints.items():
                ids, values = by_signal[s]
                ids.append(r.id)
                values.append(v)
        sig = self._col("signals")
        for s, (ids, values) in by_signal.items():
            adapter = self.indexes.get(s)
            if adapter is None:
                adapter = self.indexes[s] = indexes.for_signal(s)
            id_arr = np.asarray(ids, dtype=np.int64)
            adapter.add(id_arr, values)
            sig[id_arr] |= sig.dtype.type(self._bit(s))

    def _edges(self, records: list[ItemRecord], *, fresh: bool = False) -> Iterable[tuple[int, int]]:
        """Pairs of live items to link. `fresh`: the records are all the pool holds, so items sharing
        an exact value are found by grouping the values, without one index search per value (the
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
            radius = self.cluster_radius[kind]
            for i, (found, _) in zip(ids, self.indexes[s].near(values, radius), strict=True):
                if len(found) == 1 and found[0] == i:
                    continue
                found = found[self.readable_live(found, None)]
                for j in found.tolist():
                    if j != i:
                        yield i, j

    def _recluster(self, members: np.ndarray) -> None:
        if not len(members):
            return
        self.clusters.reset(members)
        live = members[self.readable_live(members, None) & (self._col("signals")[members] != 0)]
        if len(live) < 2:
            return
        stored = self._fetch(live.tolist())
        records = [ItemRecord(m, 0, 0, "active", "", "", 0, 0, stored.get(m, {})) for m in live.tolist()]
        member_set = set(live.tolist())
        for a, b in self._edges(records):
            if b in member_set:
                self.clusters.union(a, b)


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


def fingerprints_of(conn: Connection, ids: list[int]) -> dict[int, dict[str, str]]:
    """The stored fingerprints ({signal: canonical value}) of these items, by id."""
    fps: dict[int, dict[str, str]] = {}
    for i in range(0, len(ids), _CHUNK):
        q = sa.select(items.c.id, items.c.fingerprints).where(items.c.id.in_(ids[i : i + _CHUNK]))
        for item_id, stored in conn.execute(q).all():
            fps[item_id] = orjson.loads(stored)
    return fps


def _records(conn: Connection, window: tuple[int, int] | None) -> list[ItemRecord]:
    """Current rows (fingerprints included) of the items changed in the cursor window (after, upto],
    or of every item when `window` is None; one query however many items changed."""
    q = sa.select(
        items.c.id,
        items.c.list_id,
        items.c.contributor_id,
        items.c.status,
        items.c.scheme,
        items.c.classification,
        items.c.reviewers,
        items.c.fp_key,
        items.c.created_at,
        items.c.fingerprints,
    )
    if window is not None:
        changed = (
            sa.select(changes.c.item_id)
            .where(changes.c.cursor > window[0], changes.c.cursor <= window[1])
            .distinct()
            .subquery()
        )
        q = q.join(changed, changed.c.item_id == items.c.id)
    loads = orjson.loads
    return [ItemRecord(*row[:8], fingerprints=loads(row[9]), created_at=row[8]) for row in _fetched(conn, q)]
