"""Exact-membership index for crypto digests and opaque values: which ids carry this exact value?

    ex = ExactIndex(); ex.add(ids, [bytes.fromhex(md5), ...]); ex.search(values) -> [ids, ...]

Millions of entries stay compact (36 bytes each for 1M MD5s, where a dict of sets costs ~250) and
lookups stay O(log n) with no Python object per entry: a "main" run holds every value's 64-bit
BLAKE2b key in a sorted numpy array, the values themselves back to back in one byte blob (a key
match is confirmed against the stored bytes, so results are exact even if two values' keys
collide), ids alongside, and a tombstone byte per row. Values of one width (digests) need no offsets;
ids and row numbers are stored in 32 bits when they fit. Removal finds rows through a copy of the
ids in id order, so it reads a few pages of a saved index instead of gathering all of it. Recent
additions sit in two small dicts; past `delta_limit` of them the writer merges everything into a
new main and swaps it in. Readers take the current (main, delta) pair in one attribute read and
never wait for the writer.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from hashhub.index import _fileformat
from hashhub.index._inputs import as_ids
from hashhub.index.errors import IndexFileError, IndexInputError

_MAGIC = b"HHIXEXA2"
#: files written before the compact layout (offsets for every value, 64-bit ids and rows): still read
_MAGIC_V1 = b"HHIXEXA1"
_I32 = np.iinfo(np.int32)


def _as_values(values: Iterable[Any]) -> list[bytes]:
    if isinstance(values, bytes | bytearray | str):
        raise IndexInputError("values must be a sequence of bytes values, not a single value.")
    out = []
    for v in values:
        if not isinstance(v, bytes | bytearray | memoryview):
            hint = " (for a hex digest pass bytes.fromhex(value))" if isinstance(v, str) else ""
            raise IndexInputError(f"each value must be bytes, got {type(v).__name__}{hint}.")
        if not len(v):
            raise IndexInputError("values must not be empty.")
        out.append(bytes(v))
    return out


def _keys(values: Sequence[bytes]) -> np.ndarray:
    joined = b"".join(hashlib.blake2b(v, digest_size=8).digest() for v in values)
    return np.frombuffer(joined, np.uint64).copy()


def _narrow(a: np.ndarray) -> np.ndarray:
    """`a` as int32 when every entry fits (half the pages to store and touch), else as it is."""
    if not a.shape[0] or (int(a.min()) >= _I32.min and int(a.max()) <= _I32.max):
        return a.astype(np.int32, copy=False)
    return a


class _Main:
    """An immutable run of (key, id, value) sorted by key; only `alive` changes (tombstones).

    `width` > 0: every value has that many bytes and value r is blob[r*width:(r+1)*width]; 0: the
    values' lengths differ and `offsets` (n + 1 entries) locate them. `sorted_ids` holds the ids in
    id order and `by_id` the row of each, for remove()."""

    __slots__ = ("alive", "blob", "by_id", "ids", "keys", "offsets", "sorted_ids", "width")

    def __init__(
        self,
        keys: np.ndarray,
        ids: np.ndarray,
        blob: np.ndarray,
        *,
        width: int,
        offsets: np.ndarray | None = None,
        by_id: np.ndarray | None = None,
        sorted_ids: np.ndarray | None = None,
    ) -> None:
        self.keys, self.ids, self.blob, self.width, self.offsets = keys, ids, blob, width, offsets
        self.alive = np.ones(ids.shape[0], np.uint8)
        # Saved with the file, so that loading sorts nothing and removing reads only a few pages.
        if by_id is None:
            by_id = _narrow(np.argsort(ids, kind="stable"))
        self.by_id = by_id
        self.sorted_ids = ids[by_id] if sorted_ids is None else sorted_ids

    @classmethod
    def build(cls, ids: np.ndarray, values: list[bytes]) -> _Main:
        keys = _keys(values)
        order = np.argsort(keys, kind="stable")
        ordered = [values[i] for i in order]
        blob = np.frombuffer(b"".join(ordered), np.uint8)
        widths = {len(v) for v in values}
        if len(widths) == 1:
            return cls(keys[order], _narrow(ids[order]), blob, width=widths.pop())
        lengths = np.fromiter((len(v) for v in ordered), np.int64, len(ordered))
        offsets = np.zeros(len(ordered) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(keys[order], _narrow(ids[order]), blob, width=0, offsets=offsets)

    def value(self, row: int) -> bytes:
        if self.width:
            return self.blob[row * self.width : (row + 1) * self.width].tobytes()
        assert self.offsets is not None
        return self.blob[self.offsets[row] : self.offsets[row + 1]].tobytes()

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Live rows holding these ids."""
        sorted_ids = self.sorted_ids
        if sorted_ids.dtype == np.int32:  # searching with int64 would convert (copy) the whole array
            ids = ids[(ids >= _I32.min) & (ids <= _I32.max)].astype(np.int32)
        at = np.searchsorted(sorted_ids, ids)
        inside = at < sorted_ids.shape[0]
        at = at[inside]
        rows = self.by_id[at[sorted_ids[at] == ids[inside]]]
        return rows[self.alive[rows] != 0]

    def live(self) -> tuple[np.ndarray, list[bytes]]:
        rows = np.flatnonzero(self.alive)
        return self.ids[rows].astype(np.int64), [self.value(int(r)) for r in rows]

    def merged_with(self, ids: np.ndarray, values: list[bytes]) -> _Main:
        """A new run of this one's live rows plus (ids, values), without a Python object per row
        when every value has this run's width (digests: the usual case)."""
        width = self.width
        if not self.ids.shape[0] or not width or any(len(v) != width for v in values):
            live_ids, live_values = self.live()
            return _Main.build(np.concatenate([live_ids, ids]), live_values + values)
        rows = np.flatnonzero(self.alive)
        keys = np.concatenate([self.keys[rows], _keys(values)])
        all_ids = np.concatenate([self.ids[rows].astype(np.int64), ids])
        table = np.concatenate(
            [self.blob.reshape(-1, width)[rows], np.frombuffer(b"".join(values), np.uint8).reshape(-1, width)]
        )
        order = np.argsort(keys, kind="stable")
        return _Main(keys[order], _narrow(all_ids[order]), table[order].reshape(-1), width=width)

    def arrays(self) -> dict[str, np.ndarray]:
        """What a file holds (offsets only for values of mixed lengths)."""
        out = {"keys": self.keys, "ids": _narrow(self.ids), "blob": self.blob}
        if self.offsets is not None:
            out["offsets"] = self.offsets
        # a run read from a layout-1 file holds 64-bit ids and rows: narrowed here
        return out | {"sorted_ids": _narrow(self.sorted_ids), "by_id": _narrow(self.by_id)}

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], mmap: bool) -> _Main:
        magic = _magic_of(path)
        meta, arrays = _fileformat.read(path, magic if magic == _MAGIC_V1 else _MAGIC, mmap=mmap)
        ids, by_id = arrays["ids"], arrays.get("by_id")  # the first files lacked by_id: sort on load
        if by_id is not None and by_id.shape != ids.shape:
            raise IndexFileError(f"{path} is damaged: its id order does not cover its entries.")
        if magic == _MAGIC_V1:  # read whole, once: the next save writes the compact layout
            offsets = arrays["offsets"]
            widths = np.diff(offsets)
            fixed = bool(widths.shape[0]) and bool(np.all(widths == widths[0]))
            width = int(widths[0]) if fixed else 0
            return cls(
                arrays["keys"],
                ids,
                arrays["blob"],
                width=width,
                offsets=None if fixed else offsets,
                by_id=by_id,
            )
        sorted_ids = arrays["sorted_ids"]
        if by_id is None or sorted_ids.shape != ids.shape:
            raise IndexFileError(f"{path} is damaged: its id order does not cover its entries.")
        return cls(
            arrays["keys"],
            ids,
            arrays["blob"],
            width=int(meta["width"]),
            offsets=arrays.get("offsets"),
            by_id=by_id,
            sorted_ids=sorted_ids,
        )


def _magic_of(path: str | os.PathLike[str]) -> bytes:
    """The file's first 8 bytes (which layout to read); errors are left to the full read."""
    try:
        with open(path, "rb") as f:
            return f.read(8)
    except OSError:
        return _MAGIC


class ExactIndex:
    """Maps exact byte values to the ids that carry them; one writer and any number of readers."""

    def __init__(self, *, delta_limit: int = 65_536) -> None:
        self._delta_limit = delta_limit
        self._lock = threading.Lock()
        self._main = _Main.build(np.empty(0, np.int64), [])
        self._by_value: dict[bytes, tuple[int, ...]] = {}  # tuples, replaced whole: safe to read
        self._by_id: dict[int, bytes] = {}
        self._view = (self._main, self._by_value)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"<ExactIndex {self._count} values>"

    def add(self, ids: Any, values: Iterable[Any]) -> None:
        """Insert or replace (upsert) the value of each id; a later duplicate id in a batch wins."""
        ids_arr, vals = as_ids(ids), _as_values(values)
        if ids_arr.shape[0] != len(vals):
            raise IndexInputError(f"got {ids_arr.shape[0]} ids but {len(vals)} values; they must pair up.")
        with self._lock:
            self._remove_locked(np.unique(ids_arr))
            for ident, v in zip(ids_arr.tolist(), vals, strict=True):
                old = self._by_id.get(ident)
                if old is not None:  # repeated id inside this batch
                    self._drop_delta(ident, old)
                    self._count -= 1
                self._by_id[ident] = v
                self._by_value[v] = (*self._by_value.get(v, ()), ident)
                self._count += 1
            if len(self._by_id) >= self._delta_limit:
                self._merge_locked()

    def remove(self, ids: Any) -> None:
        """Remove these ids; unknown ids are ignored."""
        ids_arr = np.unique(as_ids(ids))
        with self._lock:
            self._remove_locked(ids_arr)

    def _remove_locked(self, ids: np.ndarray) -> None:
        rows = self._main.rows_of(ids)
        self._main.alive[rows] = 0
        self._count -= rows.shape[0]
        for ident in ids.tolist():
            v = self._by_id.get(ident)
            if v is not None:
                self._drop_delta(ident, v)
                self._count -= 1

    def _drop_delta(self, ident: int, value: bytes) -> None:
        del self._by_id[ident]
        holders = tuple(i for i in self._by_value[value] if i != ident)
        if holders:
            self._by_value[value] = holders
        else:
            del self._by_value[value]

    def _merge_locked(self) -> None:
        merged = self._main.merged_with(
            np.fromiter(self._by_id, np.int64, len(self._by_id)), list(self._by_id.values())
        )
        self._main, self._by_value, self._by_id = merged, {}, {}
        self._view = (merged, self._by_value)

    def search(self, values: Iterable[Any]) -> list[np.ndarray]:
        """For each value: the sorted int64 ids that carry exactly this value (empty when none)."""
        vals = _as_values(values)
        main, by_value = self._view
        keys = _keys(vals)
        lo = np.searchsorted(main.keys, keys, "left")
        hi = np.searchsorted(main.keys, keys, "right")
        out = []
        for v, a, b in zip(vals, lo.tolist(), hi.tolist(), strict=True):
            found = [int(main.ids[r]) for r in range(a, b) if main.alive[r] and main.value(r) == v]
            found += by_value.get(v, ())
            out.append(np.array(sorted(found), np.int64))
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write every live entry to `path` (versioned binary, replaced atomically)."""
        with self._lock:
            if self._by_id or not self._main.alive.all():
                self._merge_locked()
            main = self._main
        meta = {"count": int(main.ids.shape[0]), "width": main.width}
        _fileformat.write(path, _MAGIC, meta, main.arrays())

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, mmap: bool = True, delta_limit: int = 65_536
    ) -> ExactIndex:
        """Reopen a saved index (arrays memory-mapped copy-on-write when `mmap`: processes opening
        one file share its pages). A larger `delta_limit` keeps more later additions in the small
        in-memory delta before a merge copies the whole index into this process's own memory; it is
        raised to an eighth of the loaded entries, below which the delta's dicts (~200 bytes an
        entry) cost less than that private copy (36 bytes an MD5 entry, all of them)."""
        main = _Main.from_file(path, mmap)
        ex = cls(delta_limit=max(delta_limit, main.ids.shape[0] // 8))
        ex._main, ex._count = main, main.ids.shape[0]
        ex._view = (main, ex._by_value)
        return ex
