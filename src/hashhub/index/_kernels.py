"""Numba kernels behind the PDQ and PDNA indexes (no Python objects, the GIL released).

A PDQ code is read as four uint64 words (the 32 bytes of its hex, viewed natively), bit k of the code
being bit k % 64 of word k // 64. The multi-index splits those 256 bits into the consecutive chunks of
CHUNK_WIDTHS; build and search both extract them through `_chunk`, so they always agree. Hamming
distance does not depend on how bits are numbered, only on every bit landing in exactly one chunk.

Kernels that emit matches return three arrays (query row, stored row, distance) grown by doubling; the
caller groups them per query. All are compiled with `cache=True` so a new process loads machine code
from `__pycache__` instead of recompiling (`warm_up` forces that load up front).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

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
LOW_BITS = 8
MIN_BUCKET_BITS = 8
_PREFETCH_AHEAD = 16


@intrinsic
def _popcount(typingctx, x):  # type: ignore[no-untyped-def]
    """LLVM's ctpop: a single POPCNT instruction on x86-64, where a bit-twiddling loop would be ~10."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        fn = builder.module.declare_intrinsic("llvm.ctpop", [args[0].type])
        return builder.call(fn, [args[0]])

    return x(x), codegen


@intrinsic
def _prefetch(typingctx, arr, idx):  # type: ignore[no-untyped-def]
    """Hint the CPU to start loading arr[idx] into cache (llvm.prefetch); a no-op for correctness.
    Probing a bucket costs two dependent cache misses (its bounds, then its rows); issuing the
    second one several buckets ahead lets those misses overlap instead of queueing one by one."""
    if not isinstance(arr, types.Array) or arr.ndim != 1 or not isinstance(idx, types.Integer):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        # LLVM 15+ (opaque pointers) names the overload .p0; older ones .p0i8.
        suffix = "p0" if str(i8p) == "ptr" else "p0i8"
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.prefetch.{suffix}")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


@njit(inline="always")
def _chunk(codes, i, start, width):  # type: ignore[no-untyped-def]
    """Bits [start, start + width) of code i, a row of four uint64 words (width <= 32). Indexing the
    2-D array directly: taking a row view per call costs a reference count in hot loops."""
    w = start >> 6
    off = start & 63
    v = codes[i, w] >> np.uint64(off)
    if off + width > 64:
        v |= codes[i, w + 1] << np.uint64(64 - off)
    return np.int64(v & np.uint64((1 << width) - 1))


@njit(inline="always")
def _distance(codes, i, queries, q):  # type: ignore[no-untyped-def]
    """Hamming distance between stored code i and query q."""
    return np.int64(
        _popcount(codes[i, 0] ^ queries[q, 0])
        + _popcount(codes[i, 1] ^ queries[q, 1])
        + _popcount(codes[i, 2] ^ queries[q, 2])
        + _popcount(codes[i, 3] ^ queries[q, 3])
    )


@njit(cache=True, nogil=True)
def _grow(qs, rs, ds):  # type: ignore[no-untyped-def]
    cap = qs.shape[0] * 2
    nq = np.empty(cap, np.int64)
    nr = np.empty(cap, np.int64)
    nd = np.empty(cap, ds.dtype)
    nq[: qs.shape[0]] = qs
    nr[: rs.shape[0]] = rs
    nd[: ds.shape[0]] = ds
    return nq, nr, nd


# The hot loops below live in small non-inlined helpers that only read. When the loop that grows the
# output arrays also holds the scan, numba keeps those arrays' references live across iterations and
# the scan runs ~10x slower (18 ns a row instead of 1.8, measured).


@njit(nogil=True, inline="never")
def _next_within(codes, i, stop, q0, q1, q2, q3, radius):  # type: ignore[no-untyped-def]
    """First row >= i (or `stop`) whose code is within `radius` of the query words q0..q3."""
    while i < stop:
        d = np.int64(
            _popcount(codes[i, 0] ^ q0)
            + _popcount(codes[i, 1] ^ q1)
            + _popcount(codes[i, 2] ^ q2)
            + _popcount(codes[i, 3] ^ q3)
        )
        if d <= radius:
            return i
        i += 1
    return stop


@njit(nogil=True, inline="never")
def _next_low(lows, e, stop, ql, room):  # type: ignore[no-untyped-def]
    """First entry >= e (or `stop`) of a bucket whose low bits differ from `ql` in <= room bits."""
    while e < stop:
        if _popcount(np.int64(lows[e]) ^ ql) <= room:
            return e
        e += 1
    return stop


@njit(cache=True, nogil=True)
def hamming_scan(codes, alive, lo, hi, queries, radius):  # type: ignore[no-untyped-def]
    """Brute force over rows [lo, hi): every live row within `radius` of each query.

    Rows are walked in blocks of 2,048 (64 KB of codes) and every query is tested against a block
    while it sits in L2, so a batch reads the codes once instead of once per query.
    """
    nq = queries.shape[0]
    qs = np.empty(256, np.int64)
    rs = np.empty(256, np.int64)
    ds = np.empty(256, np.int32)
    m = 0
    block = 2048
    for start in range(lo, hi, block):
        stop = min(start + block, hi)
        for q in range(nq):
            q0, q1, q2, q3 = queries[q, 0], queries[q, 1], queries[q, 2], queries[q, 3]
            i = start
            while True:
                i = _next_within(codes, i, stop, q0, q1, q2, q3, radius)
                if i >= stop:
                    break
                if alive[i] != 0:
                    if m == qs.shape[0]:
                        qs, rs, ds = _grow(qs, rs, ds)
                    qs[m] = q
                    rs[m] = i
                    ds[m] = _distance(codes, i, queries, q)
                    m += 1
                i += 1
    return qs[:m], rs[:m], ds[:m]


@njit(cache=True, nogil=True)
def build_table(codes, bits, start, width, offsets, entries):  # type: ignore[no-untyped-def]
    """Fill one chunk's bucket table: the rows sorted by the chunk's top `bits` + LOW_BITS bits.

    `offsets[h]` is where bucket h (the top `bits` bits) starts (zeros on entry); `entries` holds
    (row << 8) | low, low being the LOW_BITS chunk bits below the bucket bits (fewer when the chunk is
    narrower), so a probe rejects most rows of a bucket without touching their 32-byte code, and
    within a bucket entries are sorted by low so an exact-low probe is a binary search. Two stable
    counting sorts (by low, then by bucket: an LSD radix sort), O(n) with two temporary columns.
    Tables are built on separate threads by the caller (no numba `parallel=True`: its OpenMP layer
    makes a later fork() of the host process abort).
    """
    n = codes.shape[0]
    nb = 1 << bits
    shift = width - bits
    lbits = min(LOW_BITS, shift)
    lshift = shift - lbits
    lmask = (1 << lbits) - 1
    counts = np.zeros((1 << LOW_BITS) + 1, np.int64)
    keys = np.empty(n, np.int64)
    for i in range(n):
        key = _chunk(codes, i, start, width)
        keys[i] = key
        counts[((key >> lshift) & lmask) + 1] += 1
    for v in range(1 << LOW_BITS):
        counts[v + 1] += counts[v]
    by_low_key = np.empty(n, np.int64)
    by_low_row = np.empty(n, np.int64)
    for i in range(n):
        v = (keys[i] >> lshift) & lmask
        p = counts[v]
        counts[v] = p + 1
        by_low_key[p] = keys[i]
        by_low_row[p] = i
    for i in range(n):
        offsets[(by_low_key[i] >> shift) + 1] += 1
    for h in range(nb):
        offsets[h + 1] += offsets[h]
    fill = offsets[:nb].astype(np.int64)
    for i in range(n):
        key = by_low_key[i]
        h = key >> shift
        p = fill[h]
        fill[h] = p + 1
        entries[p] = (by_low_row[i] << LOW_BITS) | ((key >> lshift) & lmask)


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


@njit(nogil=True, inline="always")
def _guess(plo, phi, proom, pql, k, lbits):  # type: ignore[no-untyped-def]
    """Where probe k's matching entries should be: the bucket is sorted by low, so an exact-low probe
    starts at the low's proportional place (lows are near uniform), a wider one at the bucket start."""
    lo = plo[k]
    if proom[k] != 0:
        return lo
    return lo + (((phi[k] - lo) * pql[k]) >> lbits)


@njit(nogil=True, inline="never")
def _collect(entries, plo, phi, proom, pql, nprobes, lbits, out, n_out):  # type: ignore[no-untyped-def]
    """Rows of the probes' bucket ranges whose low bits are within each probe's room of its low
    `pql[k]`, appended to `out` from n_out (the caller made room for every entry of those buckets).
    Exact-low probes (room 0, nearly all of them) walk from the low's proportional place in the
    bucket, which is sorted by low, so they usually read one cache line: the one prefetched
    `_PREFETCH_AHEAD` probes earlier."""
    mask = (1 << LOW_BITS) - 1
    for k in range(min(_PREFETCH_AHEAD, nprobes)):
        _prefetch(entries, _guess(plo, phi, proom, pql, k, lbits))
    for k in range(nprobes):
        if k + _PREFETCH_AHEAD < nprobes:
            _prefetch(entries, _guess(plo, phi, proom, pql, k + _PREFETCH_AHEAD, lbits))
        lo, hi, room, ql = plo[k], phi[k], proom[k], pql[k]
        if room == 0:
            e = _guess(plo, phi, proom, pql, k, lbits)
            while e > lo and np.int64(entries[e - 1] & mask) >= ql:
                e -= 1
            while e < hi and np.int64(entries[e] & mask) < ql:
                e += 1
            while e < hi and np.int64(entries[e] & mask) == ql:
                out[n_out] = np.int64(entries[e] >> LOW_BITS)
                n_out += 1
                e += 1
        else:
            for e in range(lo, hi):
                v = entries[e]
                if _popcount(np.int64(v & mask) ^ ql) <= room:
                    out[n_out] = np.int64(v >> LOW_BITS)
                    n_out += 1
    return n_out


@njit(nogil=True, inline="never")
def _bounds(  # type: ignore[no-untyped-def]
    offsets,
    base,
    qh,
    ql,
    bits,
    masks,
    flips,
    t,
    nmasks,
    lmasks,
    lball,
    lbits,
    bucket,
    broom,
    plo,
    phi,
    proom,
    pql,
):
    """Probes of one table (bucket masks within `bits` bits): each bucket's bounds are an independent
    load, prefetched ahead so the misses overlap. A bucket whose room allows flipped low bits (up to
    LOOKUP_ROOM) becomes one exact-low probe per allowed low. Returns the probe count and the entries
    their buckets hold (each bucket counted once: its lows are disjoint)."""
    nb = 0
    for k in range(nmasks):
        mk = masks[k]
        if mk >> bits:
            continue
        bucket[nb] = base + (qh ^ mk)
        broom[nb] = t - flips[k]
        nb += 1
    for k in range(min(_PREFETCH_AHEAD, nb)):
        _prefetch(offsets, bucket[k])
    total = 0
    nprobes = 0
    for k in range(nb):
        if k + _PREFETCH_AHEAD < nb:
            _prefetch(offsets, bucket[k + _PREFETCH_AHEAD])
        h = bucket[k]
        lo = np.int64(offsets[h])
        hi = np.int64(offsets[h + 1])
        total += hi - lo
        room = broom[k]
        if room == 0 or room >= lball.shape[0]:
            plo[nprobes], phi[nprobes], proom[nprobes], pql[nprobes] = lo, hi, room, ql
            nprobes += 1
            continue
        for x in range(lball[room]):
            lm = lmasks[x]
            if lm >> lbits:
                continue
            plo[nprobes], phi[nprobes], proom[nprobes], pql[nprobes] = lo, hi, 0, ql ^ lm
            nprobes += 1
    return nprobes, total


@njit(cache=True, nogil=True)
def multi_index_search(
    codes,
    alive,
    offsets,
    obase,
    entries,
    bits,
    starts,
    widths,
    queries,
    radius,
    chunk_radius,
    masks,
    flips,
    ball,
    lmasks,
    lball,
):  # type: ignore[no-untyped-def]
    """Exact radius search through the chunk tables.

    `chunk_radius[j]` is the radius probed in chunk j (-1: skip the table); the caller keeps
    sum(chunk_radius + 1) > radius, so by the pigeonhole principle a code within `radius` of the query
    is within chunk_radius[j] of it in some chunk j and table j finds it. Probing chunk j within t bits
    visits each bucket (the chunk's top bits[j] bits; its bounds at offsets[obase[j] + bucket]) that
    differs in f <= t bits (`masks`) and keeps entries whose low bits differ in <= t - f more. A query
    first gathers candidate rows from every table, then checks them with their codes prefetched ahead.
    A row is reported only by the first table that can find it (the tables before j find it iff it is
    close in their chunk), so no visited set.
    """
    nq = queries.shape[0]
    m = starts.shape[0]
    qs = np.empty(256, np.int64)
    rs = np.empty(256, np.int64)
    ds = np.empty(256, np.int32)
    found = 0
    qchunk = np.empty(m, np.int64)
    bucket = np.empty(masks.shape[0], np.int64)
    broom = np.empty(masks.shape[0], np.int64)
    most = masks.shape[0] * lball[lball.shape[0] - 1]  # every bucket split into the most lookups
    plo = np.empty(most, np.int64)
    phi = np.empty(most, np.int64)
    proom = np.empty(most, np.int64)
    pql = np.empty(most, np.int64)
    cand = np.empty(4096, np.int64)
    cand_table = np.empty(m + 1, np.int64)
    flat = codes.reshape(-1)
    for q in range(nq):
        for j in range(m):
            qchunk[j] = _chunk(queries, q, starts[j], widths[j])
        nc = 0
        for j in range(m):
            cand_table[j] = nc
            t = chunk_radius[j]
            if t < 0:
                continue
            b = bits[j]
            shift = widths[j] - b
            lbits = min(LOW_BITS, shift)
            lshift = shift - lbits
            qh = qchunk[j] >> shift
            ql = (qchunk[j] & ((1 << shift) - 1)) >> lshift
            nmasks = ball[min(t, ball.shape[0] - 1)]
            table = (offsets, obase[j], qh, ql, b, masks, flips, t, nmasks, lmasks, lball, lbits)
            nprobes, total = _bounds(*table, bucket, broom, plo, phi, proom, pql)
            if nc + total > cand.shape[0]:
                grown = np.empty(max(2 * cand.shape[0], nc + total), np.int64)
                grown[:nc] = cand[:nc]
                cand = grown
            nc = _collect(entries[j], plo, phi, proom, pql, nprobes, lbits, cand, nc)
        cand_table[m] = nc
        j = 0
        for c in range(nc):
            if c + _PREFETCH_AHEAD < nc:
                _prefetch(flat, cand[c + _PREFETCH_AHEAD] * 4)
            while cand_table[j + 1] <= c:
                j += 1
            i = cand[c]
            d = _distance(codes, i, queries, q)
            if d > radius or alive[i] == 0:
                continue
            # Table j owns the row only if it is within chunk_radius[j] there (bits below the low
            # field are not filtered) and no earlier table owns it: each match is reported once.
            owner = -1
            for x in range(j + 1):
                if _popcount(_chunk(codes, i, starts[x], widths[x]) ^ qchunk[x]) <= chunk_radius[x]:
                    owner = x
                    break
            if owner != j:
                continue
            if found == qs.shape[0]:
                qs, rs, ds = _grow(qs, rs, ds)
            qs[found] = q
            rs[found] = i
            ds[found] = d
            found += 1
    return qs[:found], rs[:found], ds[:found]


@njit(nogil=True, inline="never")
def _next_near(vectors, alive, i, stop, queries, q, limit):  # type: ignore[no-untyped-def]
    """First live row >= i (or `stop`) within squared distance `limit` of query q, and that distance."""
    dim = vectors.shape[1]
    while i < stop:
        if alive[i] != 0:
            acc = 0
            for c in range(dim):
                diff = np.int32(vectors[i, c]) - np.int32(queries[q, c])
                acc += diff * diff
            if acc <= limit:
                return i, acc
        i += 1
    return stop, 0


@njit(cache=True, nogil=True)
def euclidean_scan(vectors, alive, lo, hi, queries, limit):  # type: ignore[no-untyped-def]
    """Brute force L2 over rows [lo, hi) of uint8 vectors: (query, row, distance) for every live row
    within squared distance `limit` (integers, so the comparison is exact), in blocks kept in cache."""
    nq = queries.shape[0]
    qs = np.empty(64, np.int64)
    rs = np.empty(64, np.int64)
    ds = np.empty(64, np.float32)
    m = 0
    block = 512
    for start in range(lo, hi, block):
        stop = min(start + block, hi)
        for q in range(nq):
            i = start
            while True:
                i, acc = _next_near(vectors, alive, i, stop, queries, q, limit)
                if i >= stop:
                    break
                if m == qs.shape[0]:
                    qs, rs, ds = _grow(qs, rs, ds)
                qs[m] = q
                rs[m] = i
                ds[m] = np.sqrt(np.float64(acc))
                m += 1
                i += 1
    return qs[:m], rs[:m], ds[:m]


_warm = False


def warm_up() -> None:
    """Load (or on first use, compile) every kernel now, so the first real query pays no JIT cost."""
    global _warm
    if _warm:
        return
    codes = np.zeros((4, 4), np.uint64)
    alive = np.ones(4, np.uint8)
    hamming_scan(codes, alive, 0, 4, codes[:1], 31)
    nb = 1 << MIN_BUCKET_BITS
    offsets = np.zeros(N_CHUNKS * (nb + 1), np.uint32)
    obase = np.arange(N_CHUNKS + 1, dtype=np.int64) * (nb + 1)
    entries = np.empty((N_CHUNKS, 4), np.uint32)
    for j in range(N_CHUNKS):
        bounds = offsets[obase[j] : obase[j + 1]]
        build_table(codes, MIN_BUCKET_BITS, CHUNK_STARTS[j], CHUNK_WIDTHS[j], bounds, entries[j])
    masks, flips, ball = flip_masks(MIN_BUCKET_BITS, 1)
    radii = np.ones(N_CHUNKS, np.int64)
    bits = np.full(N_CHUNKS, MIN_BUCKET_BITS, np.int64)
    tables = (codes, alive, offsets, obase, entries, bits, CHUNK_STARTS, CHUNK_WIDTHS)
    probes = (9, radii, masks, flips, ball, *low_masks())
    multi_index_search(*tables, codes[:1], *probes)
    # The large-batch sweep too: else the first batch of 4,096+ queries in a new process loaded (or
    # compiled, seconds) it mid-query. Imported here: _pdq_batch imports this module.
    from hashhub.index import _pdq_batch

    _pdq_batch.sweep_search(*tables, codes[:1], *probes)
    vectors = np.zeros((2, 144), np.uint8)
    euclidean_scan(vectors, alive[:2], 0, 2, vectors[:1], 100)
    _warm = True
