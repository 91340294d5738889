"""Large-batch PDQ search through the chunk tables: the batch's probes and candidates in address order.

Query by query (`_kernels.multi_index_search`), every bucket probe and every candidate code read is
a cache miss at 10M rows. A large batch probes each bucket of a table many times (4,096 queries x
~120 probes a table over 32-64K buckets) and reads candidate codes spread over the whole code array.
Here, per slice of the batch and per table, the probes are counting-sorted by bucket so a table is
read in address order (each bucket's lines loaded once for all the queries that probe it), and the
candidate (query, row) pairs are counting-sorted by row so the code reads are one forward pass.
Same pigeonhole and owner rule as the per-query kernel, so the answers are the same rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hashhub.index._kernels import LOW_BITS, _chunk, _popcount, _prefetch

# A candidate is packed as row << _ROW_SHIFT | query << 4 | table; a match as row << _ROW_SHIFT |
# query << 9 | distance (distance <= 256 needs 9 bits): one int64 per pair, sortable by row.
_QUERY_BITS = 16
_ROW_SHIFT = _QUERY_BITS + 9
MAX_SLICE = 1 << _QUERY_BITS
# Rows a code-sort bucket spans: 64 rows are 2 KB of codes, so the rows of one bucket stay in L1.
_ROW_GROUP_BITS = 6


@njit(nogil=True, inline="never")
def _sweep_table(
    entries,
    offsets,
    base,
    order,
    nprobe_items,
    p,
    qh_of,
    ql_of,
    vmask,
    vroom,
    nvalid,
    lbits,
    lmasks,
    lball,
    cand,
    nc,
    j,
):  # type: ignore[no-untyped-def]
    """Collect candidates of the probes order[p:] (sorted by bucket) into cand from nc, stopping
    before a probe whose bucket might not fit. Returns (next probe, candidates)."""
    mask = (1 << LOW_BITS) - 1
    cap = cand.shape[0]
    while p < nprobe_items:
        item = order[p]
        q = item // nvalid
        k = item - q * nvalid
        h = qh_of[q] ^ vmask[k]
        lo = np.int64(offsets[base + h])
        hi = np.int64(offsets[base + h + 1])
        if nc + (hi - lo) > cap:
            return p, nc
        ql = ql_of[q]
        room = vroom[k]
        tag = (q << 4) | j
        if room >= lball.shape[0]:
            for e in range(lo, hi):
                v = entries[e]
                if _popcount(np.int64(v & mask) ^ ql) <= room:
                    cand[nc] = (np.int64(v >> LOW_BITS) << _ROW_SHIFT) | tag
                    nc += 1
            p += 1
            continue
        # Every low within `room` bits of ql, looked up exactly (the bucket is sorted by low):
        # 9 or 37 short lookups in lines the sweep just loaded instead of scanning the bucket.
        for x in range(lball[room]):
            lm = lmasks[x]
            if lm >> lbits:
                continue
            want = ql ^ lm
            e = lo + (((hi - lo) * want) >> lbits)
            while e > lo and np.int64(entries[e - 1] & mask) >= want:
                e -= 1
            while e < hi and np.int64(entries[e] & mask) < want:
                e += 1
            while e < hi and np.int64(entries[e] & mask) == want:
                cand[nc] = (np.int64(entries[e] >> LOW_BITS) << _ROW_SHIFT) | tag
                nc += 1
                e += 1
        p += 1
    return p, nc


@njit(nogil=True, inline="never")
def _check(codes, alive, sorted_cand, nc, queries, qchunk, starts, widths, radius, chunk_radius, out):  # type: ignore[no-untyped-def]
    """Candidates (sorted by row) that are live, within `radius` and owned by the table that found
    them, packed as matches into out (at least nc long). Returns the match count."""
    flat = codes.reshape(-1)
    found = 0
    for c in range(nc):
        if c + 16 < nc:
            _prefetch(flat, (sorted_cand[c + 16] >> _ROW_SHIFT) * 4)
        key = sorted_cand[c]
        i = key >> _ROW_SHIFT
        q = (key >> 4) & (MAX_SLICE - 1)
        j = key & 15
        d = np.int64(
            _popcount(codes[i, 0] ^ queries[q, 0])
            + _popcount(codes[i, 1] ^ queries[q, 1])
            + _popcount(codes[i, 2] ^ queries[q, 2])
            + _popcount(codes[i, 3] ^ queries[q, 3])
        )
        if d > radius or alive[i] == 0:
            continue
        owner = -1
        for x in range(j + 1):
            if _popcount(_chunk(codes, i, starts[x], widths[x]) ^ qchunk[q, x]) <= chunk_radius[x]:
                owner = x
                break
        if owner != j:
            continue
        out[found] = (i << _ROW_SHIFT) | (q << 9) | d
        found += 1
    return found


@njit(nogil=True, inline="never")
def _radix_pass(src, dst, nc, shift, nbits):  # type: ignore[no-untyped-def]
    """Stable counting-sort pass of src[:nc] into dst by the nbits-bit digit at `shift`."""
    nd = 1 << nbits
    counts = np.zeros(nd + 1, np.int64)
    for c in range(nc):
        counts[((src[c] >> shift) & (nd - 1)) + 1] += 1
    for g in range(nd):
        counts[g + 1] += counts[g]
    for c in range(nc):
        g = (src[c] >> shift) & (nd - 1)
        dst[counts[g]] = src[c]
        counts[g] += 1


@njit(nogil=True)
def _sort_by_row(cand, nc, n):  # type: ignore[no-untyped-def]
    """cand[:nc] sorted by row >> _ROW_GROUP_BITS (cand is reused as scratch)."""
    key_bits = 1
    while (1 << key_bits) <= (n >> _ROW_GROUP_BITS):
        key_bits += 1
    by_row = np.empty(nc, np.int64)
    low = key_bits // 2
    _radix_pass(cand, by_row, nc, _ROW_SHIFT + _ROW_GROUP_BITS, low)
    _radix_pass(by_row, cand, nc, _ROW_SHIFT + _ROW_GROUP_BITS + low, key_bits - low)
    return cand, by_row


@njit(cache=True, nogil=True)
def sweep_search(
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
    """Exact radius search of up to MAX_SLICE queries at once; arguments and results as
    `_kernels.multi_index_search` (query row, stored row, distance), in row order."""
    nq = queries.shape[0]
    m = starts.shape[0]
    n = codes.shape[0]
    qchunk = np.empty((nq, m), np.int64)
    for q in range(nq):
        for j in range(m):
            qchunk[q, j] = _chunk(queries, q, starts[j], widths[j])
    cand = np.empty(max(1 << 16, nq * 1024), np.int64)
    nc = 0
    qh_of = np.empty(nq, np.int64)
    ql_of = np.empty(nq, np.int64)
    vmask = np.empty(masks.shape[0], np.int64)
    vroom = np.empty(masks.shape[0], np.int64)
    for j in range(m):
        t = chunk_radius[j]
        if t < 0:
            continue
        b = bits[j]
        shift = widths[j] - b
        lbits = min(LOW_BITS, shift)
        lshift = shift - lbits
        nmasks = ball[min(t, ball.shape[0] - 1)]
        nvalid = 0
        for k in range(nmasks):
            if masks[k] >> b:
                continue
            vmask[nvalid] = masks[k]
            vroom[nvalid] = t - flips[k]
            nvalid += 1
        for q in range(nq):
            qh_of[q] = qchunk[q, j] >> shift
            ql_of[q] = (qchunk[q, j] & ((1 << shift) - 1)) >> lshift
        # Counting sort of the (query, mask) probes by bucket.
        nb = 1 << b
        counts = np.zeros(nb + 1, np.int64)
        for q in range(nq):
            qh = qh_of[q]
            for k in range(nvalid):
                counts[(qh ^ vmask[k]) + 1] += 1
        for h in range(nb):
            counts[h + 1] += counts[h]
        total = nq * nvalid
        order = np.empty(total, np.int64)
        for q in range(nq):
            qh = qh_of[q]
            for k in range(nvalid):
                h = qh ^ vmask[k]
                order[counts[h]] = q * nvalid + k
                counts[h] += 1
        p = 0
        while True:
            p, nc = _sweep_table(
                entries[j],
                offsets,
                obase[j],
                order,
                total,
                p,
                qh_of,
                ql_of,
                vmask,
                vroom,
                nvalid,
                lbits,
                lmasks,
                lball,
                cand,
                nc,
                j,
            )
            if p >= total:
                break
            grown = np.empty(2 * cand.shape[0] + (1 << 16), np.int64)
            grown[:nc] = cand[:nc]
            cand = grown
    # Two-pass LSD radix sort of the candidates by row group (512-way passes keep the scatter's
    # write streams in cache): the code reads become one forward pass.
    by_row, spare = _sort_by_row(cand, nc, n)
    found = _check(codes, alive, by_row, nc, queries, qchunk, starts, widths, radius, chunk_radius, spare)
    qs = np.empty(found, np.int64)
    rs = np.empty(found, np.int64)
    ds = np.empty(found, np.int32)
    for f in range(found):
        v = spare[f]
        rs[f] = v >> _ROW_SHIFT
        qs[f] = (v >> 9) & (MAX_SLICE - 1)
        ds[f] = v & 511
    return qs, rs, ds
