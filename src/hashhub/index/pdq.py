"""PDQ index: every stored code within Hamming distance R of a query, exactly, updated in place.

    ix = PdqIndex(); ix.add(ids, codes); ix.search(codes, radius=31) -> [(ids, distances), ...]

Layout (see _pdq_segment and _kernels): a large id-sorted "main" segment with eleven chunk tables
(multi-index hashing), a "middle" segment of merged recent additions (tables too, once large), and a
small "delta" of the latest additions scanned by brute force. A search reads an immutable tuple of
segments (`_view`), so it never waits for a writer. add() rebuilds only the delta (copy-on-write, so a
new code is matchable as soon as add returns); remove() clears tombstone bytes in place. When the
delta outgrows its limit a background thread merges it into the middle segment, O(middle); only when
the middle one passes 1/MID_SHARE of the main one (or tombstones pile up) is everything merged into a
new main, O(n). Removals made during a merge are replayed onto its result before the swap.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from hashhub.index import _fileformat, _kernels, _pdq_dihedral
from hashhub.index._inputs import as_ids, as_rows, last_wins, merge
from hashhub.index._pdq_dihedral import DIHEDRAL_NAMES
from hashhub.index._pdq_segment import PdqSegment, Tables, bucket_bits, build_tables
from hashhub.index._results import Match, group_matches
from hashhub.index.errors import IndexInputError

CODE_BYTES = 32
DEFAULT_RADIUS = 31
MAX_RADIUS = 256
_MAGIC = b"HHIXPDQ1"
# Background merges fold the delta into a middle segment until it holds 1/MID_SHARE of the main one's
# rows; only then is everything merged into a new main (O(n): 11 s at 10M). Each middle segment adds
# its own (smaller, cheaper) probes to a query, which bounds how large it may grow.
MID_SHARE = 16
DihedralMatch = tuple[np.ndarray, np.ndarray, np.ndarray]  # ids, distances, variant numbers
# Table layout inside the file: 1 = separate low/row columns (read by rebuilding), 2 = packed entries.
_LAYOUT = 2


def _empty_segment() -> PdqSegment:
    return PdqSegment.build(np.empty(0, np.int64), np.empty((0, CODE_BYTES), np.uint8), tables=False)


def _check_radius(radius: Any) -> int:
    if isinstance(radius, bool) or not isinstance(radius, int | np.integer):
        raise IndexInputError(f"radius must be an integer, got {radius!r}.")
    if not 0 <= radius <= MAX_RADIUS:
        raise IndexInputError(f"radius must be between 0 and {MAX_RADIUS}, got {radius}.")
    return int(radius)


class PdqIndex:
    """Exact Hamming-radius index over 256-bit PDQ codes; searches may run while one writer updates it."""

    def __init__(self, *, delta_limit: int | None = None) -> None:
        """`delta_limit`: recent additions kept outside the tables before a background merge
        (default: 0.1% of the index, between 4,096 and 65,536)."""
        self._delta_limit = delta_limit
        self._lock = threading.Lock()  # one writer at a time; readers never take it
        self._compacting = threading.Lock()  # one merge at a time
        self._main = _empty_segment()
        self._mid = _empty_segment()  # merged additions, with tables, until a full merge
        self._frozen: tuple[PdqSegment, ...] = ()  # segments being merged, still searched meanwhile
        self._delta = _empty_segment()
        self._removed_while_merging: list[np.ndarray] | None = None
        self._count = 0
        self._worker: threading.Thread | None = None
        self._view: tuple[PdqSegment, ...] = (self._main, self._delta)

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        pending = len(self._delta) + len(self._mid)
        return f"<PdqIndex {self._count} codes, {pending} outside the main tables>"

    # -- writes -------------------------------------------------------------------------------------

    def add(self, ids: Any, codes: Any) -> None:
        """Insert or replace (upsert) codes (n, 32) uint8 under int64 ids; matchable when this returns."""
        ids_arr, rows = last_wins(as_ids(ids), as_rows(codes, CODE_BYTES, "codes"))
        if not ids_arr.shape[0]:
            return
        with self._lock:
            old = self._delta
            replaced = old.find(ids_arr)
            keep = np.ones(len(old), bool)
            keep[replaced] = False
            keep &= old.alive != 0
            delta_ids, delta_codes = merge(
                old.ids[keep], old.codes.view(np.uint8).reshape(-1, CODE_BYTES)[keep], ids_arr, rows
            )
            self._delta = PdqSegment.build(delta_ids, delta_codes, tables=False)
            # Publish the new codes before retiring the old ones: a concurrent search may briefly see
            # an upserted id twice, but never misses it.
            self._publish()
            retired = replaced.shape[0] + self._kill_locked(ids_arr, include_delta=False)
            self._count += ids_arr.shape[0] - retired
            # A bulk load (at least as many codes as the tables hold) gets its tables now; smaller
            # batches wait in the delta, and the merge they trigger runs in the background.
            big_batch = ids_arr.shape[0] >= max(self._limit(), len(self._main))
            due = self._merge_due()
        if big_batch:
            self.compact()
        elif due:
            self._merge_in_background()

    def remove(self, ids: Any) -> None:
        """Remove these ids; unknown ids are ignored. Takes effect for searches as soon as it returns."""
        ids_arr = np.unique(as_ids(ids))
        if not ids_arr.shape[0]:
            return
        with self._lock:
            self._count -= self._kill_locked(ids_arr, include_delta=True)
            due = self._merge_due()
        if due:
            self._merge_in_background()

    def _kill_locked(self, ids: np.ndarray, *, include_delta: bool) -> int:
        segments = [self._main, self._mid, *self._frozen] + ([self._delta] if include_delta else [])
        killed = sum(seg.kill(ids) for seg in segments)
        if self._removed_while_merging is not None:
            self._removed_while_merging.append(ids)
        return killed

    def _publish(self) -> None:
        parts = (self._main, self._mid, *self._frozen, self._delta)
        self._view = tuple(p for p in parts if len(p))

    def _limit(self) -> int:
        if self._delta_limit is not None:
            return max(1, self._delta_limit)
        return min(65_536, max(4_096, len(self._main) // 1000))

    def _merge_due(self) -> bool:
        main, mid, limit = self._main, self._mid, self._limit()
        return len(self._delta) >= limit or main.dead > max(limit, len(main) // 5) or mid.dead > limit

    def _merge_in_background(self) -> None:
        worker = self._worker
        if worker is not None and worker.is_alive():
            return  # the running merge is followed by another on the next write if still due
        self._worker = threading.Thread(target=self._merge_step, name="hashhub-pdq-merge", daemon=True)
        self._worker.start()

    def _merge_step(self) -> None:
        with self._compacting:
            self._merge_locked(full=False)

    def compact(self) -> None:
        """Merge every pending addition into the main tables and drop removed rows now (normally
        automatic, in the background)."""
        with self._compacting:
            self._merge_locked(full=True)

    def _merge_locked(self, *, full: bool) -> None:
        """Merge the delta into the middle segment, or (when `full`, when the middle one has grown
        past 1/MID_SHARE of the main one, or when the main one holds many removed rows) everything
        into a new main. The middle level keeps most merges O(recent additions) instead of O(n).
        The caller holds `_compacting`."""
        with self._lock:
            main, mid, delta = self._main, self._mid, self._delta
            pending = len(mid) + len(delta)
            full = full or pending > len(main) // MID_SHARE or main.dead > max(self._limit(), len(main) // 5)
            if not len(delta) and not mid.dead and not (full and (len(mid) or main.dead)):
                return
            self._frozen = (mid, delta)
            self._mid, self._delta = _empty_segment(), _empty_segment()
            runs = [(main, main.alive.copy())] if full else []
            runs += [(mid, mid.alive.copy()), (delta, delta.alive.copy())]
            self._removed_while_merging = []
            self._publish()
        try:
            ids, codes = runs[-1][0].live_rows(runs[-1][1])
            for seg, alive in reversed(runs[:-1]):
                ids, codes = merge(*seg.live_rows(alive), ids, codes)
            merged = PdqSegment.build(ids, codes)
        except BaseException:
            self._unfreeze(mid, delta)  # e.g. out of memory: keep every code searchable, retry later
            raise
        with self._lock:
            for removed in self._removed_while_merging:
                merged.kill(removed)
            self._removed_while_merging = None
            if full:
                self._main = merged
            else:
                self._mid = merged
            self._frozen = ()
            self._publish()

    def _unfreeze(self, mid: PdqSegment, delta: PdqSegment) -> None:
        """Undo a failed merge: the middle segment comes back as it was, the frozen delta's rows go
        back into the delta (ids replaced or removed meanwhile were tombstoned in them, so the
        two hold no id in common)."""
        with self._lock:
            ids, codes = merge(*self._delta.live_rows(), *delta.live_rows())
            self._delta = PdqSegment.build(ids, codes, tables=False)
            self._mid, self._frozen, self._removed_while_merging = mid, (), None
            self._publish()

    def wait_merged(self) -> None:
        """Block until a background merge in progress (if any) has been swapped in."""
        worker = self._worker
        if worker is not None:
            worker.join()

    # -- reads --------------------------------------------------------------------------------------

    def search(
        self, codes: Any, radius: int = DEFAULT_RADIUS, *, dihedral: bool = False
    ) -> list[Match] | list[DihedralMatch]:
        """For each query row (n, 32) uint8: (ids int64, distances int32) of every stored code within
        `radius` bits, exactly, nearest first. Batches are split across CPU cores.

        With `dihedral`, each query is also tried as its 7 rotations and flips (computed from its bits:
        an approximation, see `_pdq_dihedral`) and each row is (ids, distances, variants): every id
        once, at its nearest variant's distance, `variants` int8 indexing `DIHEDRAL_NAMES`."""
        rows = as_rows(codes, CODE_BYTES, "codes")
        radius = _check_radius(radius)
        if dihedral:
            return self._search_dihedral(rows, radius)
        return self._search(rows.view(np.uint64).reshape(-1, 4), radius)

    def search_one(
        self, code: Any, radius: int = DEFAULT_RADIUS, *, dihedral: bool = False
    ) -> Match | DihedralMatch:
        """One code (32 bytes, or a (32,) uint8 array): (ids, distances) within `radius`, or with
        `dihedral` (ids, distances, variants) as `search` gives them."""
        rows = as_rows(code, CODE_BYTES, "code")
        if rows.shape[0] != 1:
            raise IndexInputError(
                f"search_one takes one code, got {rows.shape[0]}; use search() for batches."
            )
        return self.search(rows, radius, dihedral=dihedral)[0]

    def _search_dihedral(self, rows: np.ndarray, radius: int) -> list[DihedralMatch]:
        nq, nv = rows.shape[0], len(DIHEDRAL_NAMES)
        every = _pdq_dihedral.variants(rows).reshape(-1, CODE_BYTES)  # query q's variants at 8q..8q+7
        view = self._view
        parts = []
        for seg in view:
            q, ids, d = seg.search(every.view(np.uint64).reshape(-1, 4), radius)
            parts.append((q // nv, ids, d, (q % nv).astype(np.int8)))
        return _pdq_dihedral.fold(nq, parts)

    def _search(self, queries: np.ndarray, radius: int) -> list[Match]:
        view = self._view  # one read: the segments stay consistent for the whole search
        return group_matches(queries.shape[0], [seg.search(queries, radius) for seg in view])

    # -- files --------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Merge pending changes, then write the index (tables included) to `path`, atomically."""
        with self._compacting:  # no background merge may move rows between segments meanwhile
            self._merge_locked(full=True)
            with self._lock:
                main, delta = self._main, self._delta
                alive = main.alive.copy()
                delta_alive = delta.alive.copy()
        if len(delta):  # written concurrently with save: include it rather than drop it
            ids, codes = merge(*main.live_rows(alive), *delta.live_rows(delta_alive))
            main, alive = PdqSegment.build(ids, codes), np.ones(ids.shape[0], np.uint8)
        arrays = {"ids": main.ids, "codes": main.codes.view(np.uint8).reshape(-1, CODE_BYTES), "alive": alive}
        meta: dict[str, Any] = {"count": int(np.count_nonzero(alive)), "rows": len(main), "layout": _LAYOUT}
        if main.tables is not None:
            t = main.tables
            meta["bucket_bits"] = t.bits.tolist()
            meta["chunk_widths"] = _kernels.CHUNK_WIDTHS.tolist()
            arrays |= {"offsets": t.offsets, "entries": t.entries}
        _fileformat.write(path, _MAGIC, meta, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> PdqIndex:
        """Reopen a saved index; with `mmap` the big arrays are mapped copy-on-write, so several
        processes opening one file share its pages and start-up reads only what queries touch."""
        meta, arrays = _fileformat.read(path, _MAGIC, mmap=mmap)
        ix = cls()
        ids = np.asarray(arrays["ids"])
        codes = np.asarray(arrays["codes"]).view(np.uint64).reshape(-1, 4)
        tables = None
        same_chunks = meta.get("chunk_widths") == _kernels.CHUNK_WIDTHS.tolist()
        if meta.get("layout") == _LAYOUT and same_chunks and "entries" in arrays:
            bits = np.array(meta["bucket_bits"], np.int64)
            tables = Tables(bits, np.asarray(arrays["offsets"]), np.asarray(arrays["entries"]))
        elif meta.get("bucket_bits"):
            # A file with tables of another layout (layout 1: separate low and row columns) or
            # chunking: its codes are still good, the tables are rebuilt in O(n) (about 20 s at 10M)
            # and written in the current layout by the next save().
            tables = build_tables(codes, bucket_bits(ids.shape[0]))
        seg = PdqSegment(ids, codes, tables)
        seg.alive[:] = arrays["alive"]
        seg.dead = len(seg) - int(np.count_nonzero(seg.alive))
        ix._main, ix._count = seg, seg.live
        ix._publish()
        return ix
