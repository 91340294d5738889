"""Exact-membership index for crypto and opaque signals (simple dict version)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class ExactIndex:
    """Maps byte values to the ids that carry them. add(ids, values), remove(ids), search(values)."""

    def __init__(self) -> None:
        self._by_value: dict[bytes, set[int]] = {}
        self._by_id: dict[int, bytes] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, ids: Iterable[int], values: Iterable[bytes]) -> None:
        for i, v in zip(ids, values, strict=True):
            key, ident = bytes(v), int(i)
            self._remove_one(ident)
            self._by_id[ident] = key
            self._by_value.setdefault(key, set()).add(ident)

    def remove(self, ids: Iterable[int]) -> None:
        for i in ids:
            self._remove_one(int(i))

    def _remove_one(self, ident: int) -> None:
        key = self._by_id.pop(ident, None)
        if key is not None:
            holders = self._by_value[key]
            holders.discard(ident)
            if not holders:
                del self._by_value[key]

    def search(self, values: Iterable[bytes]) -> list[np.ndarray]:
        return [np.array(sorted(self._by_value.get(bytes(v), ())), dtype=np.int64) for v in values]
