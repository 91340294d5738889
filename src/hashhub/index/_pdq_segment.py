"""One immutable run of PDQ codes sorted by id, with tombstones and (when large) multi-index tables.

A PdqIndex is a few segments: a large "main" one with tables, and small recent ones scanned by brute
force. Rows never move inside a segment; removing an id only clears its `alive` byte, which readers
may see before or after the change but never half-done.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hashhub.index import _kernels, _parallel, _pdq_batch

# Below this many rows a brute-force scan (~1 ns a row) beats probing ~5,000 buckets.
MIN_TABLE_ROWS = 1 << 15

# Rough costs (ns) behind the choice between probing tables and scanning, measured on a 2-core x86
# machine at 10M codes (a probe and a candidate are each about one cache miss); only their ratios
# matter and a wrong guess costs speed, never correctness.
_PROBE_NS = 80.0
_CANDIDATE_NS = 80.0
_SCAN_ROW_NS = 1.2
# A thread's share of a batch from this many queries on goes through the sweep (`_pdq_batch`), in
# slices of one to two times this size: at 10M it took 205-235 microseconds of CPU a query against
# 245-320 query by query at 4,096-16,384 queries, and the same at 2,048. A slice's candidates take
# ~16 bytes each (~2,500-3,500 a query, uniform codes at 10M): a slice holds 200-400 MB per thread.
SWEEP_MIN = 4096
# ... and only in segments this large: at 1M rows (4 MB a table, mostly in cache) the sweep lost
# 10-20% to query by query; at 3.5M and 10M it won 13-20% (wall, 10,000 queries, 1 and 2 threads).
SWEEP_MIN_ROWS = 1 << 21


@dataclass(frozen=True, slots=True)
class Tables:
    bits: np.ndarray  # (chunks,) int64: bucket bits of each chunk's table
    offsets: np.ndarray  # flat uint32: table j's 2**bits[j] + 1 bucket bounds start at obase[j]
    entries: np.ndarray  # (chunks, n) uint32 (uint64 past 2**24 rows): row << 8 | low bits

    @property
    def obase(self) -> np.ndarray:
        return offset_bases(self.bits)

    @property
    def nbytes(self) -> int:
        return self.offsets.nbytes + self.entries.nbytes


def offset_bases(bits: np.ndarray) -> np.ndarray:
    """Where each table's bucket bounds start in the flat offsets array."""
    return np.concatenate(([0], np.cumsum((1 << bits.astype(np.int64)) + 1))).astype(np.int64)


def entry_dtype(n: int) -> type:
    """4-byte entries while row numbers fit in 24 bits (16.7M rows), 8-byte ones beyond."""
    return np.uint32 if n <= 1 << (32 - _kernels.LOW_BITS) else np.uint64


def build_tables(codes: np.ndarray, bits: np.ndarray) -> Tables:
    """All chunk tables of (n, 4) uint64 codes, one per thread of the shared pool."""
    n, m = codes.shape[0], _kernels.N_CHUNKS
    obase = offset_bases(bits)
    offsets = np.zeros(int(obase[-1]), np.uint32)
    entries = np.empty((m, n), entry_dtype(n))

    def build(lo: int, hi: int) -> None:
        for j in range(lo, hi):
            start, width = _kernels.CHUNK_STARTS[j], _kernels.CHUNK_WIDTHS[j]
            bounds = offsets[obase[j] : obase[j + 1]]
            _kernels.build_table(codes, int(bits[j]), start, width, bounds, entries[j])

    _parallel.map_ranges(build, _parallel.split(m, 1))
    return Tables(bits, offsets, entries)


# Bucket bits a table gets at n rows: log2(n) - BUCKET_SHIFT, so about 2**BUCKET_SHIFT rows a bucket.
# Longer buckets mean fewer, cheaper-to-cache bucket bounds (1 MB a table at 10M rows: they stay in
# L3) and a probe reads a few consecutive cache lines instead of chasing one more random one.
BUCKET_SHIFT = 5


def bucket_bits(n: int) -> np.ndarray:
    """Per chunk: bucket prefix bits for n rows, leaving at least LOW_BITS chunk bits for the filter."""
    want = round(math.log2(max(n, 1))) - BUCKET_SHIFT
    room = _kernels.CHUNK_WIDTHS - _kernels.LOW_BITS
    return np.clip(np.minimum(want, room), _kernels.MIN_BUCKET_BITS, None).astype(np.int64)


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
def _probes(bits: tuple[int, ...], radius: int) -> tuple[int, float]:
    """Bucket probes a query makes, and the share of all rows it expects as candidates (rows within
    the probe radius in a whole chunk, uniform codes)."""
    radii = chunk_radii(radius)
    widths = _kernels.CHUNK_WIDTHS.tolist()
    probes = sum(_ball(b, int(t)) for b, t in zip(bits, radii, strict=True) if t >= 0)
    share = sum(_ball(w, int(t)) / 2**w for w, t in zip(widths, radii, strict=True) if t >= 0)
    return probes, share


def probe_cost(n: int, bits: np.ndarray, radius: int) -> float:
    probes, share = _probes(tuple(bits.tolist()), radius)
    return probes * _PROBE_NS + min(1.0, share) * n * _CANDIDATE_NS


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
            masks, flips, ball = _masks(int(t.bits.max()), int(radii.max()))
            # Both kernels take the same table arguments before the queries and the same probe
            # arguments after them.
            tables = (
                self.codes,
                self.alive,
                t.offsets,
                t.obase,
                t.entries,
                t.bits,
                _kernels.CHUNK_STARTS,
                _kernels.CHUNK_WIDTHS,
            )
            probes = (radius, radii, masks, flips, ball, *_kernels.low_masks())

            def probe(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                if hi - lo >= SWEEP_MIN and n >= SWEEP_MIN_ROWS:
                    return _sweep(lo, hi)
                q, r, d = _kernels.multi_index_search(*tables, queries[lo:hi], *probes)
                return q + lo, r, d

            def _sweep(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                slices = (hi - lo) // SWEEP_MIN  # slices of 4,096 to 8,191 queries
                bounds = [lo + (hi - lo) * k // slices for k in range(slices + 1)]
                out = []
                for a, b in itertools.pairwise(bounds):
                    q, r, d = _pdq_batch.sweep_search(*tables, np.ascontiguousarray(queries[a:b]), *probes)
                    out.append((q + a, r, d))
                return tuple(np.concatenate(x) for x in zip(*out, strict=True))  # type: ignore[return-value]

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
