"""PDQ Hamming-radius index (brute force placeholder for the multi-index version)."""

from __future__ import annotations

import threading

import numpy as np

_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


class PdqIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = np.empty(0, dtype=np.int64)
        self._codes = np.empty((0, 32), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, ids: np.ndarray, codes: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        codes = np.asarray(codes, dtype=np.uint8).reshape(-1, 32)
        with self._lock:
            self._ids = np.concatenate([self._ids, ids])
            self._codes = np.concatenate([self._codes, codes])

    def remove(self, ids: np.ndarray) -> None:
        with self._lock:
            keep = ~np.isin(self._ids, np.asarray(ids, dtype=np.int64))
            self._ids, self._codes = self._ids[keep], self._codes[keep]

    def search(self, codes: np.ndarray, radius: int = 31) -> list[tuple[np.ndarray, np.ndarray]]:
        codes = np.asarray(codes, dtype=np.uint8).reshape(-1, 32)
        ids, stored = self._ids, self._codes
        out = []
        for q in codes:
            d = _POPCOUNT8[np.bitwise_xor(stored, q)].sum(axis=1, dtype=np.int32)
            hit = d <= radius
            out.append((ids[hit], d[hit]))
        return out
