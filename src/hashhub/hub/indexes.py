"""One search structure per signal, chosen by the signal's `index_kind` (never by its name).

Each adapter takes canonical text values (as stored and as sent by clients), converts them to what
`hashhub.index` wants, and answers `near(values, radius)` with one (ids, distances) pair per value.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import numpy as np

from hashhub import signals
from hashhub.signals import HexDigestSignal, PdnaSignal

Hits = list[tuple[np.ndarray, np.ndarray]]


def _index() -> ModuleType:
    """`hashhub.index`, imported on first use: it loads numba, which admin CLI commands never need."""
    from hashhub import index

    return index


class ExactAdapter:
    def __init__(self, signal: type[signals.SignalType]) -> None:
        self._hex = issubclass(signal, HexDigestSignal)
        self._index = _index().ExactIndex()

    def _key(self, value: str) -> bytes:
        return bytes.fromhex(value) if self._hex else value.encode()

    def add(self, ids: np.ndarray, values: Sequence[str]) -> None:
        self._index.add(ids, [self._key(v) for v in values])

    def remove(self, ids: np.ndarray) -> None:
        self._index.remove(ids)

    def near(self, values: Sequence[str], radius: float = 0) -> Hits:
        found = self._index.search([self._key(v) for v in values])
        return [(ids, np.zeros(len(ids), dtype=np.int32)) for ids in found]


class HammingAdapter:
    def __init__(self, signal: type[signals.SignalType]) -> None:
        self._index = _index().PdqIndex()

    @staticmethod
    def _codes(values: Sequence[str]) -> np.ndarray:
        joined = bytes.fromhex("".join(values))
        return np.frombuffer(joined, dtype=np.uint8).reshape(len(values), 32)

    def add(self, ids: np.ndarray, values: Sequence[str]) -> None:
        self._index.add(ids, self._codes(values))

    def remove(self, ids: np.ndarray) -> None:
        self._index.remove(ids)

    def near(self, values: Sequence[str], radius: float = 0) -> Hits:
        if not values:
            return []
        return self._index.search(self._codes(values), radius=int(radius))


class VectorAdapter:
    """PhotoDNA vectors by Euclidean distance; exact match until `hashhub.index` has a vector index."""

    def __init__(self, signal: type[signals.SignalType]) -> None:
        vector_index = getattr(_index(), "PdnaIndex", None)
        self._index = vector_index() if vector_index else None
        self._fallback = ExactAdapter(signal) if self._index is None else None

    @staticmethod
    def _vectors(values: Sequence[str]) -> np.ndarray:
        joined = b"".join(PdnaSignal.to_bytes(v) for v in values)
        return np.frombuffer(joined, dtype=np.uint8).reshape(len(values), -1)

    def add(self, ids: np.ndarray, values: Sequence[str]) -> None:
        if self._fallback is not None:
            self._fallback.add(ids, values)
        else:
            self._index.add(ids, self._vectors(values))

    def remove(self, ids: np.ndarray) -> None:
        (self._index if self._fallback is None else self._fallback).remove(ids)

    def near(self, values: Sequence[str], radius: float = 0) -> Hits:
        if self._fallback is not None:
            return self._fallback.near(values)
        if not values:
            return []
        return self._index.search(self._vectors(values), radius)


ADAPTERS = {"exact": ExactAdapter, "hamming": HammingAdapter, "vector": VectorAdapter}


def for_signal(name: str) -> ExactAdapter | HammingAdapter | VectorAdapter:
    signal = signals.get(name)
    return ADAPTERS[signal.index_kind](signal)


def warm_up() -> None:
    """Build one index of each kind now: compiled search kernels are then ready before the first
    request, and compilation never runs on two request threads at once."""
    for signal in ("md5", "pdq", "pdna"):
        for_signal(signal).near([], 0)
