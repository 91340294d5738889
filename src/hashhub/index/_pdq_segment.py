"""One immutable run of PDQ codes sorted by id, with tombstones and (when large) multi-index tables.

A PdqIndex is a few segments: a large "main" one with tables, and small recent ones scanned by brute
force. Rows never move inside a segment; removing an id only clears its `alive` byte, which readers
may see before or after the change but never half-done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hashhub.index import _kernels, _parallel

# Below this many rows a brute-force scan (~1 ns a row) beats probing ~5,000 buckets.
MIN_TABLE_ROWS = 1 << 15

# Rough costs (ns) behind the choice between probing tables and scanning, measured on a 2-core x86
# machine; only their ratios matter and a wrong guess costs speed, never correctness.
_PROBE_NS = 15.0
_BUCKET_ROW_NS = 1.0
_SCAN_ROW_NS = 1.2


@dataclass(frozen=True, slots=True)
class Tables:
    bits: int
    offsets: np.ndarray  # (chunks, 2**bits + 1) uint32
    lows: np.ndarray  # (chunks, n) uint8
    rows: np.ndarray  # (chunks, n) uint32


def build_tables(codes: np.ndarray, bits: int) -> Tables:
    """All chunk tables of (n, 4) uint64 codes, one per thread of the shared pool."""
    n, m = codes.shape[0], _kernels.N_CHUNKS
    offsets = np.zeros((m, (1 << bits) + 1), np.uint32)
    lows = np.empty((m, n), np.uint8)
    rows = np.empty((m, n), np.uint32)

    def build(lo: int, hi: int) -> None:
        for j in range(lo, hi):
            start, width = _kernels.CHUNK_STARTS[j], _kernels.CHUNK_WIDTHS[j]
            _kernels.build_table(codes, bits, start, width, offsets[j], lows[j], rows[j])

    _parallel.map_ranges(build, _parallel.split(m, 1))
    return Tables(bits, offsets, lows, rows)


def bucket_bits(n: int) -> int:
    """Bucket prefix length giving about 4 rows a bucket: more bits mean shorter buckets but a bigger
    offsets table (4 bytes a bucket per chunk: 80 MB at 21 bits) and more probes a query."""
    return min(_kernels.MAX_BUCKET_BITS, max(_kernels.MIN_BUCKET_BITS, round(math.log2(max(n, 1))) - 2))


@lru_cache(maxsize=64)
def chunk_radii(radius: int) -> np.ndarray:
    """Per-chunk probe radii t_j with sum(t_j + 1) = radius + 1: the least that keeps the search exact.
    Wider chunks (listed first) take the larger radii: their buckets are sparser."""
    base, extra = divmod(radius + 1, _kernels.N_CHUNKS)
    radii = np.array([base + (1 if j < extra else 0) - 1 for j in range(_kernels.N_CHUNKS)], np.int64)
    return radii


@lru_cache(maxsize=64)
def _masks(bits: int, max_flips: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _kernels.flip_masks(bits, min(bits, max_flips))


def _ball(bits: int, r: int) -> int:
    return sum(math.comb(bits, f) for f in range(min(r, bits) + 1))


@lru_cache(maxsize=256)
def _probes(bits: int, radius: int) -> int:
    return sum(_ball(bits, int(t)) for t in chunk_radii(radius) if t >= 0)


def probe_cost(n: int, bits: int, radius: int) -> float:
    probes = _probes(bits, radius)
    return probes * (_PROBE_NS + _BUCKET_ROW_NS * n / (1 << bits))


class PdqSegment:
    __slots__ = ("alive", "codes", "dead", "ids", "tables")

    def __init__(self, ids: np.ndarray, codes: np.ndarray, tables: Tables | None) -> None:
        self.ids = ids  # (n,) int64, sorted, unique
        self.codes = codes  # (n, 4) uint64: the 32 code bytes viewed as words
        self.alive = np.ones(ids.shape[0], np.uint8)
        self.dead = 0
        self.tables = tables

    @classmethod
    def build(cls, ids: np.ndarray, codes: np.ndarray, *, tables: bool | None = None) -> PdqSegment:
        """From ids sorted and unique and codes (n, 32) uint8; tables when asked or when n is large."""
        words = np.ascontiguousarray(codes).view(np.uint64).reshape(-1, 4)
        want = ids.shape[0] >= MIN_TABLE_ROWS if tables is None else tables
        built = None
        if want and ids.shape[0]:
            built = build_tables(words, bucket_bits(ids.shape[0]))
        return cls(ids, words, built)

    def __len__(self) -> int:
        return self.ids.shape[0]

    @property
    def live(self) -> int:
        return self.ids.shape[0] - self.dead

    def find(self, ids: np.ndarray) -> np.ndarray:
        """Rows of the given ids that are present and alive here."""
        if not len(self) or not ids.shape[0]:
            return np.empty(0, np.int64)
        at = np.searchsorted(self.ids, ids)
        inside = at < len(self)
        at = at[inside]
        found = at[self.ids[at] == ids[inside]]
        return found[self.alive[found] != 0]

    def kill(self, ids: np.ndarray) -> int:
        """Tombstone these ids; returns how many were alive. Caller holds the index's writer lock."""
        rows = self.find(ids)
        self.alive[rows] = 0
        self.dead += rows.shape[0]
        return rows.shape[0]

    def live_rows(self, alive: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, codes (n, 32) uint8) of live rows, per `alive` (default: the current mask)."""
        mask = (self.alive if alive is None else alive) != 0
        codes = self.codes.view(np.uint8).reshape(-1, 32)
        if mask.all():
            return self.ids, codes
        return self.ids[mask], codes[mask]

    def search(self, queries: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query row, id, distance) of every live code within `radius` of each (n, 4) uint64 query."""
        n, nq = len(self), queries.shape[0]
        if n == 0 or nq == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32)
        t = self.tables
        if t is not None and probe_cost(n, t.bits, radius) < _SCAN_ROW_NS * n:
            radii = chunk_radii(radius)
            masks, flips, ball = _masks(t.bits, int(radii.max()))

            def probe(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                q, r, d = _kernels.multi_index_search(
                    self.codes,
                    self.alive,
                    t.offsets,
                    t.lows,
                    t.rows,
                    t.bits,
                    _kernels.CHUNK_STARTS,
                    _kernels.CHUNK_WIDTHS,
                    queries[lo:hi],
                    radius,
                    radii,
                    masks,
                    flips,
                    ball,
                )
                return q + lo, r, d

            parts = _parallel.map_ranges(probe, _parallel.split(nq, 2))
        elif nq >= 2 * _parallel.workers():

            def scan_queries(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                q, r, d = _kernels.hamming_scan(self.codes, self.alive, 0, n, queries[lo:hi], radius)
                return q + lo, r, d

            parts = _parallel.map_ranges(scan_queries, _parallel.split(nq, 1))
        else:

            def scan_rows(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                return _kernels.hamming_scan(self.codes, self.alive, lo, hi, queries, radius)

            parts = _parallel.map_ranges(scan_rows, _parallel.split(n, 1 << 16))
        if len(parts) == 1:
            q, r, d = parts[0]
        else:
            q, r, d = (np.concatenate(x) for x in zip(*parts, strict=True))
        return q, self.ids[r], d
