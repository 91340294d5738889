"""The kernels behind the PDQ and PDNA indexes, in C (`_native`, built at install time; the GIL is
released while they run, so `_parallel` runs them on plain threads). This module holds their Python
face: the chunk layout, the probe masks, and numpy views of their results.

A PDQ code is read as four uint64 words (the 32 bytes of its hex, viewed natively), bit k of the code
being bit k % 64 of word k // 64. The multi-index splits those 256 bits into the consecutive chunks of
CHUNK_WIDTHS; build and search both extract them the same way, so they always agree. Hamming distance
does not depend on how bits are numbered, only on every bit landing in exactly one chunk.

Kernels that emit matches return three arrays (query row, stored row, distance); the caller groups
them per query. No numba here: a process that only matches never loads numba or LLVM (~100 MB
resident each).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from hashhub.index import _native

Triple = tuple[np.ndarray, np.ndarray, np.ndarray]

# Eleven chunks (three of 24 bits, eight of 23) partition the 256 bits. At R=31 the refined pigeonhole
# (sum of t_j + 1 = R + 1) probes ten chunks within 2 bits and one within 1: about 1,300 bucket probes
# and 2,500 candidate rows a query at 10M. Ten chunks of 25/26 bits need two tables probed within 3
# bits (3,200 probes, 1,700 candidates): measured the same speed at 10M, a slower build (24 s against
# 11 s), 40 MB less. Twelve chunks would triple the candidates, each a random 32-byte code read.
CHUNK_WIDTHS = np.array([24] * 3 + [23] * 8, np.int64)
CHUNK_STARTS = np.concatenate(([0], np.cumsum(CHUNK_WIDTHS)[:-1])).astype(np.int64)
N_CHUNKS = CHUNK_WIDTHS.shape[0]
# A table entry packs a row number (above bit 8) with the LOW_BITS chunk bits that follow the bucket
# bits: one 4-byte word per row and table, so a bucket's filter and rows arrive in the same cache lines.
LOW_BITS = _native.LOW_BITS
MIN_BUCKET_BITS = 8


def as_arrays(raw: tuple[bytearray, bytearray, bytearray], distance: type = np.int32) -> Triple:
    q, r, d = raw
    return np.frombuffer(q, np.int64), np.frombuffer(r, np.int64), np.frombuffer(d, distance)


def hamming_scan(
    codes: np.ndarray, alive: np.ndarray, lo: int, hi: int, queries: np.ndarray, radius: int
) -> Triple:
    """Brute force over rows [lo, hi) of (n, 4) uint64 codes: every live row within `radius` of each
    query. Rows are walked in blocks of 2,048 (64 KB of codes) and every query is tested against a
    block while it sits in L2, so a batch reads the codes once instead of once per query."""
    return as_arrays(_native.hamming_scan(codes, alive, lo, hi, queries, radius))


def build_table(
    codes: np.ndarray, bits: int, start: int, width: int, offsets: np.ndarray, entries: np.ndarray
) -> None:
    """Fill one chunk's bucket table: the rows sorted by the chunk's top `bits` + LOW_BITS bits.

    `offsets[h]` is where bucket h (the top `bits` bits) starts (zeros on entry); `entries` holds
    (row << 8) | low, low being the LOW_BITS chunk bits below the bucket bits (fewer when the chunk is
    narrower), so a probe rejects most rows of a bucket without touching their 32-byte code, and
    within a bucket entries are sorted by low so an exact-low probe is a binary search. Two stable
    counting sorts (by low, then by bucket: an LSD radix sort), O(n). The caller builds tables on
    separate threads."""
    _native.build_table(codes, bits, start, width, offsets, entries)


def flip_masks(bits: int, max_flips: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every mask of at most `max_flips` set bits among `bits`, fewest bits first: (masks, flips,
    ball) where masks[:ball[f]] are exactly those with <= f bits. Shared by all queries of a table."""
    masks = [0]
    flips = [0]
    ball = [1]
    layer = [0]
    for f in range(1, max_flips + 1):
        # Extend each mask by one bit above its highest: every f-subset is produced exactly once.
        layer = [m | (1 << b) for m in layer for b in range((m.bit_length()), bits)]
        masks += layer
        flips += [f] * len(layer)
        ball.append(len(masks))
    return np.array(masks, np.int64), np.array(flips, np.int64), np.array(ball, np.int64)


# Probes whose low bits may differ in up to this many bits are split into one exact-low lookup per
# allowed low (1, 9 or 37 of them), like the shell's probes, instead of scanning their buckets (the
# ball's centre and first shell: 16 of ~116 probes a table at R=31, but ~150-300 entries each at
# 10M). Interleaved A/B at 10M, one thread: 13% less CPU a query on uniform codes, clustered within
# noise. The sweep (`_pdq_batch`) looks lows up the same way. Wider rooms (93+ lookups) scan.
LOOKUP_ROOM = 2


@lru_cache(maxsize=1)
def low_masks() -> tuple[np.ndarray, np.ndarray]:
    """(masks, ball) of the LOW_BITS low bits within LOOKUP_ROOM flips, as the search kernels take them."""
    masks, _, ball = flip_masks(LOW_BITS, LOOKUP_ROOM)
    return masks, ball


def multi_index_search(*args: object) -> Triple:
    """Exact radius search through the chunk tables, query by query. Arguments: codes, alive,
    offsets, obase, entries, bits, starts, widths, queries, radius, chunk_radius, masks, flips, ball,
    lmasks, lball.

    `chunk_radius[j]` is the radius probed in chunk j (-1: skip the table); the caller keeps
    sum(chunk_radius + 1) > radius, so by the pigeonhole principle a code within `radius` of the query
    is within chunk_radius[j] of it in some chunk j and table j finds it. Probing chunk j within t bits
    visits each bucket (the chunk's top bits[j] bits; its bounds at offsets[obase[j] + bucket]) that
    differs in f <= t bits (`masks`) and keeps entries whose low bits differ in <= t - f more (one
    exact-low lookup per allowed low up to LOOKUP_ROOM bits, a scan of the bucket beyond). Bucket
    bounds, entries and candidate codes are each prefetched 16 items ahead so their cache misses
    overlap. A row is reported only by the first table that can find it (the tables before j find it
    iff it is close in their chunk), so no visited set.
    """
    return as_arrays(_native.multi_index_search(*args))


def euclidean_scan(
    vectors: np.ndarray, alive: np.ndarray, lo: int, hi: int, queries: np.ndarray, limit: int
) -> Triple:
    """Brute force L2 over rows [lo, hi) of (n, dim) uint8 vectors: (query, row, distance) for every
    live row within squared distance `limit` (integers, so the comparison is exact), in blocks of 512
    rows kept in cache."""
    # No squared distance of uint8 vectors reaches 2**62: a larger limit means the same.
    limit = min(int(limit), 1 << 62)
    raw = _native.euclidean_scan(vectors, alive, lo, hi, queries, vectors.shape[1], limit)
    return as_arrays(raw, np.float32)
