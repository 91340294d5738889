"""Exact-membership index for crypto and opaque signals (dict placeholder)."""

from __future__ import annotations

from collections.abc import Iterable


class ExactIndex:
    def __init__(self) -> None:
        self._map: dict[bytes, set[int]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._map.values())

    def add(self, ids: Iterable[int], values: Iterable[bytes]) -> None:
        for i, v in zip(ids, values, strict=True):
            self._map.setdefault(bytes(v), set()).add(int(i))

    def remove(self, ids: Iterable[int], values: Iterable[bytes]) -> None:
        for i, v in zip(ids, values, strict=True):
            s = self._map.get(bytes(v))
            if s:
                s.discard(int(i))
                if not s:
                    del self._map[bytes(v)]

    def search(self, values: Iterable[bytes]) -> list[list[int]]:
        return [sorted(self._map.get(bytes(v), ())) for v in values]
