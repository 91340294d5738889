"""PDNA index: every stored 144-byte vector within a Euclidean distance of a query, exactly.

    px = PdnaIndex(); px.add(ids, vectors); px.search(vectors, threshold=1800.0) -> [(ids, distances), ...]

Brute force in a C kernel (squared distances in exact integers, split across cores): PDNA lists
are far smaller than PDQ ones and an exhaustive scan is the only exact method that needs no tuning;
it is the same algorithm as faiss `IndexFlatL2`, without faiss at runtime. Writes are copy-on-write:
add() publishes new arrays in one reference swap, remove() clears tombstone bytes in place, and the
arrays are rewritten without the dead rows once a quarter of them are dead.
"""

from __future__ import annotations

import math
import os
import threading
from typing import Any

import numpy as np

from hashhub.index import _fileformat, _kernels, _parallel
from hashhub.index._inputs import as_ids, as_rows, last_wins, merge
from hashhub.index._results import Match, group_matches
from hashhub.index.errors import IndexInputError

VECTOR_BYTES = 144
DEFAULT_THRESHOLD = 1800.0
_MAGIC = b"HHIXPDN1"


class _Run:
    __slots__ = ("alive", "ids", "vectors")

    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids, self.vectors = ids, vectors  # ids sorted and unique
        self.alive = np.ones(ids.shape[0], np.uint8)

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        at = np.searchsorted(self.ids, ids)
        inside = at < self.ids.shape[0]
        at = at[inside]
        rows = at[self.ids[at] == ids[inside]]
        return rows[self.alive[rows] != 0]

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        keep = self.alive != 0
        return self.ids[keep], self.vectors[keep]


class PdnaIndex:
    """Exact Euclidean-threshold index over uint8 (n, 144) PhotoDNA vectors."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._run = _Run(np.empty(0, np.int64), np.empty((0, VECTOR_BYTES), np.uint8))
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"<PdnaIndex {self._count} vectors>"

    def add(self, ids: Any, vectors: Any) -> None:
        """Insert or replace (upsert) vectors (n, 144) uint8 under int64 ids."""
        ids_arr, rows = last_wins(as_ids(ids), as_rows(vectors, VECTOR_BYTES, "vectors"))
        if not ids_arr.shape[0]:
            return
        with self._lock:
            old = self._run
            keep = old.alive != 0
            keep[old.rows_of(ids_arr)] = False
            self._run = _Run(*merge(old.ids[keep], old.vectors[keep], ids_arr, rows))
            self._count = self._run.ids.shape[0]

    def remove(self, ids: Any) -> None:
        """Remove these ids; unknown ids are ignored."""
        ids_arr = np.unique(as_ids(ids))
        with self._lock:
            run = self._run
            rows = run.rows_of(ids_arr)
            run.alive[rows] = 0
            self._count -= rows.shape[0]
            if run.ids.shape[0] - self._count > run.ids.shape[0] // 4:
                self._run = _Run(*run.live())

    def search(self, vectors: Any, threshold: float = DEFAULT_THRESHOLD) -> list[Match]:
        """For each query row: (ids int64, distances float32) of stored vectors within `threshold`
        (Euclidean, inclusive), nearest first."""
        queries = as_rows(vectors, VECTOR_BYTES, "vectors")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.number):
            raise IndexInputError(f"threshold must be a number, got {threshold!r}.")
        if not math.isfinite(threshold) or threshold < 0:
            raise IndexInputError(f"threshold must be a finite number >= 0, got {threshold}.")
        # Integer squared distances compare exactly: the largest integer whose root is <= threshold.
        limit = math.floor(float(threshold) ** 2)
        run = self._run
        n = run.ids.shape[0]

        def scan(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            return _kernels.euclidean_scan(run.vectors, run.alive, lo, hi, queries, limit)

        parts = _parallel.map_ranges(scan, _parallel.split(n, 8192)) if n and queries.shape[0] else []
        triples = [(q, run.ids[r], d) for q, r, d in parts]
        return group_matches(queries.shape[0], triples, np.float32)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the live vectors to `path` (versioned binary, replaced atomically)."""
        ids, vectors = self._run.live()
        _fileformat.write(path, _MAGIC, {"count": int(ids.shape[0])}, {"ids": ids, "vectors": vectors})

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> PdnaIndex:
        _, arrays = _fileformat.read(path, _MAGIC, mmap=mmap)
        px = cls()
        px._run = _Run(arrays["ids"], arrays["vectors"])
        px._count = px._run.ids.shape[0]
        return px
