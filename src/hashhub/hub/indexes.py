"""One search structure per signal, chosen by the signal's `index_kind` (never by its name).

Each adapter takes canonical text values (as stored and as sent by clients), converts them to what
`hashhub.index` wants, and answers `near(values, radius)` with one (ids, distances) pair per value.
`save(path)` writes the index (returning the files written) and `load(signal, path, delta_limit)`
memory-maps one back; `delta_limit` is how many later additions stay in a small in-memory delta
before a merge copies the whole index into the process's own memory (see hub/poolfile.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from hashhub import signals
from hashhub.signals import HexDigestSignal, PdnaSignal

Hits = list[tuple[np.ndarray, np.ndarray]]


def _index() -> ModuleType:
    """`hashhub.index`, imported on first use: admin CLI commands never need it (nor its C kernels)."""
    from hashhub import index

    return index


class ExactAdapter:
    def __init__(self, signal: type[signals.SignalType], index: object | None = None) -> None:
        self._hex = issubclass(signal, HexDigestSignal)
        self._index = index if index is not None else _index().ExactIndex()

    def save(self, path: str | os.PathLike[str]) -> list[Path]:
        self._index.save(path)
        return [Path(path)]

    @classmethod
    def load(cls, signal: type[signals.SignalType], path: Path, delta_limit: int) -> ExactAdapter:
        return cls(signal, _index().ExactIndex.load(path, delta_limit=delta_limit))

    def _key(self, value: str) -> bytes:
        return bytes.fromhex(value) if self._hex else value.encode()

    def add(self, ids: np.ndarray, values: Sequence[str]) -> None:
        self._index.add(ids, [self._key(v) for v in values])

    def remove(self, ids: np.ndarray) -> None:
        self._index.remove(ids)

    def near(self, values: Sequence[str], radius: float = 0) -> Hits:
        found = self._index.search([self._key(v) for v in values])
        return [(ids, np.zeros(len(ids), dtype=np.int32)) for ids in found]

    def __len__(self) -> int:
        return len(self._index)


class HammingAdapter:
    def __init__(self, signal: type[signals.SignalType], index: object | None = None) -> None:
        self._index = index if index is not None else _index().PdqIndex()

    def save(self, path: str | os.PathLike[str]) -> list[Path]:
        self._index.save(path)
        return [Path(path)]

    @classmethod
    def load(cls, signal: type[signals.SignalType], path: Path, delta_limit: int) -> HammingAdapter:
        index = _index().PdqIndex.load(path)
        # PdqIndex.load takes no delta limit; its constructor's knob is set on the loaded one, so a
        # worker keeps sharing the mapped tables until the next saved pool replaces them.
        index._delta_limit = delta_limit
        return cls(signal, index)

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

    def __len__(self) -> int:
        return len(self._index)


class VectorAdapter:
    """PhotoDNA vectors by Euclidean distance; exact match until `hashhub.index` has a vector index."""

    def __init__(self, signal: type[signals.SignalType], index: object | None = None) -> None:
        vector_index = getattr(_index(), "PdnaIndex", None)
        self._index = index if index is not None else (vector_index() if vector_index else None)
        self._fallback = ExactAdapter(signal) if self._index is None else None

    def save(self, path: str | os.PathLike[str]) -> list[Path]:
        if self._fallback is not None:
            return self._fallback.save(path)
        self._index.save(path)
        return [Path(path)]

    @classmethod
    def load(cls, signal: type[signals.SignalType], path: Path, delta_limit: int) -> VectorAdapter:
        return cls(signal, _index().PdnaIndex.load(path))

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

    def __len__(self) -> int:
        return len(self._index if self._fallback is None else self._fallback)


class VideoAdapter:
    """vPDQ videos through `VpdqIndex`. The radius is the largest share of the query's frames that
    may go unmatched (vPDQ's 1 - query threshold), and a hit's distance is 1 - its query share."""

    def __init__(self, signal: type[signals.SignalType], index: object | None = None) -> None:
        from hashhub.index.vpdq import VpdqIndex

        self._index = index if index is not None else VpdqIndex()

    def save(self, path: str | os.PathLike[str]) -> list[Path]:
        return self._index.save(path)

    @classmethod
    def load(cls, signal: type[signals.SignalType], path: Path, delta_limit: int) -> VideoAdapter:
        from hashhub.index.vpdq import VpdqIndex

        return cls(signal, VpdqIndex.load(path))

    def add(self, ids: np.ndarray, values: Sequence[str]) -> None:
        self._index.add_many(zip(ids.tolist(), values, strict=True))

    def remove(self, ids: np.ndarray) -> None:
        self._index.remove(ids.tolist())

    def near(self, values: Sequence[str], radius: float = 0) -> Hits:
        return [(ids, 1.0 - shares) for ids, shares, _ in self.near_shares(values, radius)]

    def __len__(self) -> int:
        return len(self._index)

    def near_shares(self, values: Sequence[str], radius: float = 0) -> list[tuple[np.ndarray, ...]]:
        """Per value: (ids, query shares, listed shares), best first."""
        found = self._index.search_many(values, query_threshold=max(0.0, 1.0 - radius)) if values else []
        return [
            (
                np.fromiter((m.id for m in hits), np.int64, len(hits)),
                np.fromiter((m.query_share for m in hits), np.float64, len(hits)),
                np.fromiter((m.listed_share for m in hits), np.float64, len(hits)),
            )
            for hits in found
        ]


Adapter = ExactAdapter | HammingAdapter | VectorAdapter | VideoAdapter
ADAPTERS = {"exact": ExactAdapter, "hamming": HammingAdapter, "vector": VectorAdapter, "video": VideoAdapter}


def for_signal(name: str) -> Adapter:
    signal = signals.get(name)
    return ADAPTERS[signal.index_kind](signal)


def load(name: str, path: Path, delta_limit: int) -> Adapter:
    """The adapter for signal `name` over an index saved at `path` (memory-mapped)."""
    signal = signals.get(name)
    return ADAPTERS[signal.index_kind].load(signal, path, delta_limit)


def warm_up() -> None:
    """Build one adapter of each kind now, so the first request does not pay for importing and
    setting them up (the kernels are compiled C: nothing is compiled at run time)."""
    for signal in ("md5", "pdq", "pdna"):
        for_signal(signal).near([], 0)
