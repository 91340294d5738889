"""The pool's per-item facts as numpy columns indexed by item id, and clusters kept in three of them.

No Python object per item: a million items cost ~38 bytes each here, and the columns can be saved
to a file and memory-mapped back (copy-on-write) by every hub process, which then owns only the
pages it changes.

Clusters are union-find over `parent`, plus a ring: `ring[i]` is the next member of i's cluster, so
the members of a cluster are found by walking the ring from any member, and two rings are joined by
swapping one `ring` entry of each (O(1), no lists). `csize` holds a cluster's size at its root.
"""

from __future__ import annotations

import numpy as np

#: column name -> dtype, as narrow as the facts allow (about 38 bytes an item). `reviewers` is only
#: ever asked "any?", so it holds min(reviewers, 127). `day`: the creation day (Unix seconds //
#: 86400), for growth charts. `signals`: one bit per signal name the pool indexed for the item (see
#: Pool.signal_bits). Item ids index the columns, so they stay far below 2**31 and int32 holds them.
SPEC: dict[str, type] = {
    "list": np.int32,
    "contributor": np.int32,
    "reviewers": np.int8,
    "status": np.int8,
    "grade": np.int16,
    "fp_key": np.int64,
    "day": np.uint16,
    "signals": np.uint32,
    "parent": np.int32,
    "ring": np.int32,
    "csize": np.int32,
}
MAX_SIGNALS = 32
MAX_GRADES = np.iinfo(np.int16).max
MAX_ITEM_ID = np.iinfo(np.int32).max


class Columns:
    """Equal-length columns that grow together; `size` is one past the highest id set so far."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None, size: int = 0) -> None:
        if arrays is None:
            arrays = {name: np.zeros(1024, dtype) for name, dtype in SPEC.items()}
        self.data = arrays
        self.size = size

    @property
    def capacity(self) -> int:
        return len(self.data["status"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]

    def ensure(self, size: int) -> None:
        """Room for ids below `size` (new rows zero, then their cluster fields set to singletons)."""
        if size > MAX_ITEM_ID:
            raise ValueError(f"item id {size - 1} is beyond what the pool's columns hold ({MAX_ITEM_ID}).")
        if size > self.capacity:
            grow = max(size, 2 * self.capacity)
            for name, old in self.data.items():
                new = np.zeros(grow, old.dtype)
                new[: len(old)] = old
                self.data[name] = new
        if size > self.size:
            fresh = np.arange(self.size, size, dtype=np.int64)
            self.data["parent"][fresh] = fresh
            self.data["ring"][fresh] = fresh
            self.data["csize"][fresh] = 1
            self.size = size

    def copy(self, headroom: int = 0) -> dict[str, np.ndarray]:
        """The used rows plus `headroom` zero rows (room to grow for whoever maps a saved copy)."""
        out = {}
        for name, col in self.data.items():
            arr = np.zeros(self.size + headroom, col.dtype)
            arr[: self.size] = col[: self.size]
            out[name] = arr
        if headroom:
            tail = np.arange(self.size, self.size + headroom, dtype=np.int64)
            out["parent"][tail] = tail
            out["ring"][tail] = tail
            out["csize"][self.size :] = 1
        return out

    @classmethod
    def adopt(cls, arrays: dict[str, np.ndarray], size: int) -> Columns:
        """Columns over arrays read from a file (rows past `size` already hold singleton clusters)."""
        return cls({name: arrays[name] for name in SPEC}, size)


class Clusters:
    """Union-find with member rings over a Columns' `parent`, `ring` and `csize`."""

    def __init__(self, cols: Columns) -> None:
        self._cols = cols

    def find(self, item: int) -> int:
        parent = self._cols["parent"]
        root = item
        while parent[root] != root:
            root = int(parent[root])
        while item != root:  # path compression
            nxt = int(parent[item])
            parent[item] = root
            item = nxt
        return root

    def members(self, item: int) -> list[int]:
        ring = self._cols["ring"]
        out, at = [item], int(ring[item])
        while at != item:
            out.append(at)
            at = int(ring[at])
        return out

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        parent, ring, csize = self._cols["parent"], self._cols["ring"], self._cols["csize"]
        if csize[ra] < csize[rb]:
            ra, rb = rb, ra
        parent[rb] = ra
        csize[ra] += csize[rb]
        ring[ra], ring[rb] = ring[rb], ring[ra]  # splice the two rings into one

    def reset(self, ids: np.ndarray) -> None:
        """Make each of these items a cluster of its own (callers pass whole clusters)."""
        self._cols["parent"][ids] = ids
        self._cols["ring"][ids] = ids
        self._cols["csize"][ids] = 1
