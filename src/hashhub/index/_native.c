/* The index kernels (hashhub.index._native): PDQ brute force, chunk tables (build, per-query search,
 * large-batch sweep) and PDNA brute force. Plain C over buffers, the GIL released while they run, so
 * a hub process needs neither numba nor LLVM to match. `_kernels.py` and `_pdq_batch.py` document the
 * algorithms and call these; arrays arrive as contiguous buffers (no numpy C API, no ABI coupling).
 *
 * A PDQ code is four uint64 words; bit k of the code is bit k % 64 of word k / 64. A table entry is
 * row << LOW_BITS | low (uint32, or uint64 past 2^24 rows). Kernels that emit matches return three
 * bytearrays: query row (int64), stored row (int64), distance (int32, float32 for PDNA).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* POPCNT is not in baseline x86-64: build a POPCNT clone of the kernels that count bits, chosen at
 * load time, instead of compiling for the build machine (-march=native). AVX2 for the PDNA scan. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#define SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define POPCNT_CLONES
#define SIMD_CLONES
#endif

#define LOW_BITS 8
#define LOW_MASK ((1 << LOW_BITS) - 1)
#define MAX_CHUNKS 16 /* the sweep tags a candidate's table in 4 bits */
/* Probes (and candidates) issue their cache-line prefetch this many items ahead. */
#define PREFETCH_AHEAD 16
/* Sweep: a candidate is row << ROW_SHIFT | query << 4 | table, a match row << ROW_SHIFT | query << 9
 * | distance (<= 256: 9 bits), so both sort by row as plain integers. */
#define QUERY_BITS 16
#define ROW_SHIFT (QUERY_BITS + 9)
#define MAX_SLICE (1 << QUERY_BITS)
/* Rows one code-sort group spans: 64 rows are 2 KB of codes, in L1 together. */
#define ROW_GROUP_BITS 6
/* The sweep prefetches a probe's entries this many probes (in bucket order) ahead. */
#define SWEEP_AHEAD 8

static inline int popc(uint64_t x) { return __builtin_popcountll(x); }

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Bits [start, start + width) of a code (width <= 32). */
static inline int64_t chunk_of(const uint64_t *code, int64_t start, int64_t width) {
    int64_t w = start >> 6, off = start & 63;
    uint64_t v = code[w] >> off;
    if (off + width > 64) v |= code[w + 1] << (64 - off);
    return (int64_t)(v & ((UINT64_C(1) << width) - 1));
}

static inline int64_t distance(const uint64_t *a, const uint64_t *b) {
    return popc(a[0] ^ b[0]) + popc(a[1] ^ b[1]) + popc(a[2] ^ b[2]) + popc(a[3] ^ b[3]);
}

static inline uint64_t entry_at(const void *entries, int wide, int64_t e) {
    return wide ? ((const uint64_t *)entries)[e] : ((const uint32_t *)entries)[e];
}

static inline void prefetch_entry(const void *entries, int wide, int64_t e) {
    __builtin_prefetch((const char *)entries + (wide ? 8 : 4) * e, 0, 3);
}

/* ---- growable (query, row, distance) output, filled without the GIL ---- */

typedef struct {
    int64_t *q, *r;
    void *d; /* int32 or float (4 bytes either way) */
    int64_t n, cap;
} Out;

static int out_reserve(Out *o, int64_t want) {
    if (want <= o->cap) return 0;
    int64_t cap = o->cap ? o->cap : 256;
    while (cap < want) cap *= 2;
    int64_t *q = realloc(o->q, cap * sizeof(int64_t));
    if (!q) return -1;
    o->q = q;
    int64_t *r = realloc(o->r, cap * sizeof(int64_t));
    if (!r) return -1;
    o->r = r;
    void *d = realloc(o->d, cap * 4);
    if (!d) return -1;
    o->d = d;
    o->cap = cap;
    return 0;
}

static inline int out_push_int(Out *o, int64_t q, int64_t r, int32_t d) {
    if (o->n == o->cap && out_reserve(o, o->n + 1)) return -1;
    o->q[o->n] = q;
    o->r[o->n] = r;
    ((int32_t *)o->d)[o->n] = d;
    o->n++;
    return 0;
}

static void out_free(Out *o) {
    free(o->q);
    free(o->r);
    free(o->d);
}

/* The three columns as bytearrays (one copy: they were grown outside the GIL); frees `o`. */
static PyObject *out_result(Out *o, int status) {
    PyObject *res = NULL;
    if (status) {
        PyErr_NoMemory();
    } else {
        res = Py_BuildValue("(NNN)", PyByteArray_FromStringAndSize((const char *)o->q, o->n * 8),
                            PyByteArray_FromStringAndSize((const char *)o->r, o->n * 8),
                            PyByteArray_FromStringAndSize((const char *)o->d, o->n * 4));
    }
    out_free(o);
    return res;
}

/* ---- argument checks (a wrong size must be an exception, never a read past a buffer) ---- */

static int need(int ok, const char *what) {
    if (!ok) PyErr_Format(PyExc_ValueError, "index kernel: %s", what);
    return ok;
}

static void release(Py_buffer *bufs, int n) {
    for (int i = 0; i < n; i++)
        if (bufs[i].obj) PyBuffer_Release(&bufs[i]);
}

/* ---- PDQ brute force ---- */

POPCNT_CLONES
static int hamming_scan_core(const uint64_t *codes, const uint8_t *alive, int64_t lo, int64_t hi,
                             const uint64_t *queries, int64_t nq, int64_t radius, Out *o) {
    /* Blocks of 2,048 rows (64 KB of codes): every query meets a block while it is in L2. */
    for (int64_t start = lo; start < hi; start += 2048) {
        int64_t stop = min64(start + 2048, hi);
        for (int64_t q = 0; q < nq; q++) {
            const uint64_t *qq = queries + 4 * q;
            uint64_t q0 = qq[0], q1 = qq[1], q2 = qq[2], q3 = qq[3];
            for (int64_t i = start; i < stop; i++) {
                const uint64_t *c = codes + 4 * i;
                int64_t d = popc(c[0] ^ q0) + popc(c[1] ^ q1) + popc(c[2] ^ q2) + popc(c[3] ^ q3);
                if (d <= radius && alive[i] && out_push_int(o, q, i, (int32_t)d)) return -1;
            }
        }
    }
    return 0;
}

static PyObject *py_hamming_scan(PyObject *self, PyObject *args) {
    Py_buffer b[3] = {{0}};
    long long lo, hi, radius;
    if (!PyArg_ParseTuple(args, "y*y*LLy*L", &b[0], &b[1], &lo, &hi, &b[2], &radius)) goto fail;
    int64_t n = b[1].len;
    if (!need(b[0].len == 32 * n, "codes and alive differ in rows") ||
        !need(0 <= lo && lo <= hi && hi <= n, "row range out of bounds") ||
        !need(b[2].len % 32 == 0, "queries are not 32-byte rows"))
        goto fail;
    Out o = {0};
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = hamming_scan_core(b[0].buf, b[1].buf, lo, hi, b[2].buf, b[2].len / 32,
                                                      radius, &o);
    Py_END_ALLOW_THREADS
    release(b, 3);
    return out_result(&o, status);
fail:
    release(b, 3);
    return NULL;
}

/* ---- chunk tables ---- */

static int build_table_core(const uint64_t *codes, int64_t n, int64_t bits, int64_t start, int64_t width,
                            uint32_t *offsets, void *entries, int wide) {
    int64_t nb = (int64_t)1 << bits, shift = width - bits;
    int64_t lbits = min64(LOW_BITS, shift), lshift = shift - lbits, lmask = ((int64_t)1 << lbits) - 1;
    int64_t counts[(1 << LOW_BITS) + 1] = {0};
    uint32_t *keys = malloc((n ? n : 1) * sizeof(uint32_t));
    uint64_t *by_low = malloc((n ? n : 1) * sizeof(uint64_t)); /* row << 32 | key */
    int64_t *fill = malloc(nb * sizeof(int64_t));
    if (!keys || !by_low || !fill) {
        free(keys);
        free(by_low);
        free(fill);
        return -1;
    }
    /* An LSD radix sort: stable counting sort by the low bits, then by the bucket bits. */
    for (int64_t i = 0; i < n; i++) {
        int64_t key = chunk_of(codes + 4 * i, start, width);
        keys[i] = (uint32_t)key;
        counts[((key >> lshift) & lmask) + 1]++;
    }
    for (int v = 0; v < (1 << LOW_BITS); v++) counts[v + 1] += counts[v];
    for (int64_t i = 0; i < n; i++) {
        int64_t v = (keys[i] >> lshift) & lmask;
        by_low[counts[v]++] = ((uint64_t)i << 32) | keys[i];
    }
    free(keys);
    for (int64_t i = 0; i < n; i++) offsets[((by_low[i] & 0xFFFFFFFFu) >> shift) + 1] += 1;
    for (int64_t h = 0; h < nb; h++) offsets[h + 1] += offsets[h];
    for (int64_t h = 0; h < nb; h++) fill[h] = offsets[h];
    for (int64_t i = 0; i < n; i++) {
        int64_t key = (int64_t)(by_low[i] & 0xFFFFFFFFu), row = (int64_t)(by_low[i] >> 32);
        int64_t p = fill[key >> shift]++;
        uint64_t e = ((uint64_t)row << LOW_BITS) | (uint64_t)((key >> lshift) & lmask);
        if (wide)
            ((uint64_t *)entries)[p] = e;
        else
            ((uint32_t *)entries)[p] = (uint32_t)e;
    }
    free(by_low);
    free(fill);
    return 0;
}

static PyObject *py_build_table(PyObject *self, PyObject *args) {
    Py_buffer b[3] = {{0}};
    long long bits, start, width;
    if (!PyArg_ParseTuple(args, "y*LLLw*w*", &b[0], &bits, &start, &width, &b[1], &b[2])) goto fail;
    int64_t n = b[0].len / 32;
    int wide = n ? b[2].len / n == 8 : 0;
    if (!need(b[0].len % 32 == 0, "codes are not 32-byte rows") ||
        !need(0 < width && width <= 32 && start >= 0 && start + width <= 256, "bad chunk") ||
        !need(0 < bits && bits <= width, "bad bucket bits") ||
        !need((uint64_t)b[1].len >= (((uint64_t)1 << bits) + 1) * 4, "offsets too short") ||
        !need(b[2].len == n * (wide ? 8 : 4), "entries must be n uint32 or n uint64") ||
        !need(wide || n <= ((int64_t)1 << (32 - LOW_BITS)), "too many rows for 4-byte entries"))
        goto fail;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = build_table_core(b[0].buf, n, bits, start, width, b[1].buf, b[2].buf, wide);
    Py_END_ALLOW_THREADS
    release(b, 3);
    if (status) return PyErr_NoMemory();
    Py_RETURN_NONE;
fail:
    release(b, 3);
    return NULL;
}

/* Everything a table search reads: the same arguments for the per-query and the sweep kernels. */
typedef struct {
    const uint64_t *codes;
    const uint8_t *alive;
    int64_t n;
    const uint32_t *offsets;
    const int64_t *obase;
    const void *entries; /* (m, n): table j's entries start at j * n */
    int wide;
    const int64_t *bits, *starts, *widths, *chunk_radius;
    int64_t m;
    const uint64_t *queries;
    int64_t nq, radius;
    const int64_t *masks, *flips, *ball, *lmasks, *lball;
    int64_t nmasks, nball, nlmasks, nlball;
} Search;

enum { B_CODES, B_ALIVE, B_OFFSETS, B_OBASE, B_ENTRIES, B_BITS, B_STARTS, B_WIDTHS, B_QUERIES,
       B_RADII, B_MASKS, B_FLIPS, B_BALL, B_LMASKS, B_LBALL, NB };

/* Parse (codes, alive, offsets, obase, entries, bits, starts, widths, queries, radius, chunk_radius,
 * masks, flips, ball, lmasks, lball) and check every size the kernels index by. */
static int parse_search(PyObject *args, Py_buffer *b, Search *s) {
    long long radius;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*Ly*y*y*y*y*y*", &b[B_CODES], &b[B_ALIVE], &b[B_OFFSETS],
                          &b[B_OBASE], &b[B_ENTRIES], &b[B_BITS], &b[B_STARTS], &b[B_WIDTHS], &b[B_QUERIES],
                          &radius, &b[B_RADII], &b[B_MASKS], &b[B_FLIPS], &b[B_BALL], &b[B_LMASKS],
                          &b[B_LBALL]))
        return -1;
    s->codes = b[B_CODES].buf;
    s->alive = b[B_ALIVE].buf;
    s->n = b[B_ALIVE].len;
    s->offsets = b[B_OFFSETS].buf;
    s->obase = b[B_OBASE].buf;
    s->entries = b[B_ENTRIES].buf;
    s->bits = b[B_BITS].buf;
    s->starts = b[B_STARTS].buf;
    s->widths = b[B_WIDTHS].buf;
    s->chunk_radius = b[B_RADII].buf;
    s->m = b[B_BITS].len / 8;
    s->queries = b[B_QUERIES].buf;
    s->nq = b[B_QUERIES].len / 32;
    s->radius = radius;
    s->masks = b[B_MASKS].buf;
    s->flips = b[B_FLIPS].buf;
    s->ball = b[B_BALL].buf;
    s->lmasks = b[B_LMASKS].buf;
    s->lball = b[B_LBALL].buf;
    s->nmasks = b[B_MASKS].len / 8;
    s->nball = b[B_BALL].len / 8;
    s->nlmasks = b[B_LMASKS].len / 8;
    s->nlball = b[B_LBALL].len / 8;
    int64_t cells = s->n * s->m;
    s->wide = cells ? b[B_ENTRIES].len / cells == 8 : 0;
    if (!need(b[B_CODES].len == 32 * s->n, "codes and alive differ in rows") ||
        !need(b[B_QUERIES].len % 32 == 0, "queries are not 32-byte rows") ||
        !need(0 < s->m && s->m <= MAX_CHUNKS, "bad chunk count") ||
        !need(b[B_STARTS].len == 8 * s->m && b[B_WIDTHS].len == 8 * s->m && b[B_RADII].len == 8 * s->m,
              "per-chunk arrays differ in length") ||
        !need(b[B_OBASE].len >= 8 * (s->m + 1), "obase too short") ||
        !need(b[B_ENTRIES].len == s->m * s->n * (s->wide ? 8 : 4), "entries are not (chunks, rows)") ||
        !need(b[B_FLIPS].len == b[B_MASKS].len && s->nball > 0 && s->nlball > 0, "bad masks"))
        return -1;
    for (int64_t j = 0; j < s->m; j++) {
        int64_t w = s->widths[j], st = s->starts[j], bt = s->bits[j];
        int64_t nb = (int64_t)1 << bt;
        if (!need(0 < w && w <= 32 && st >= 0 && st + w <= 256 && 0 < bt && bt <= w, "bad chunk") ||
            !need(s->obase[j] >= 0 && (s->obase[j] + nb + 1) * 4 <= b[B_OFFSETS].len, "offsets too short"))
            return -1;
    }
    for (int64_t x = 0; x < s->nball; x++)
        if (!need(0 <= s->ball[x] && s->ball[x] <= s->nmasks, "ball larger than masks")) return -1;
    for (int64_t x = 0; x < s->nlball; x++)
        if (!need(0 <= s->lball[x] && s->lball[x] <= s->nlmasks, "low ball larger than low masks")) return -1;
    return 0;
}

/* One probe: entries [lo, hi) of a bucket whose low bits are within `room` of `ql`. */
typedef struct {
    int64_t lo, hi, room, ql;
} Probe;

/* Where a probe's entries should be: the bucket is sorted by low, so an exact-low probe starts at
 * its low's proportional place (lows are near uniform), a wider one at the bucket start. */
static inline int64_t guess(const Probe *p, int64_t lbits) {
    if (p->room != 0) return p->lo;
    return p->lo + (((p->hi - p->lo) * p->ql) >> lbits);
}

/* Append the rows of bucket entries [lo, hi) whose low is exactly `want` (from the guess `e`). */
static inline int64_t exact_low(const void *E, int wide, int64_t lo, int64_t hi, int64_t e, int64_t want,
                                int64_t *out, int64_t n_out, int64_t tag) {
    while (e > lo && (int64_t)(entry_at(E, wide, e - 1) & LOW_MASK) >= want) e--;
    while (e < hi && (int64_t)(entry_at(E, wide, e) & LOW_MASK) < want) e++;
    for (; e < hi; e++) {
        uint64_t v = entry_at(E, wide, e);
        if ((int64_t)(v & LOW_MASK) != want) break;
        out[n_out++] = tag < 0 ? (int64_t)(v >> LOW_BITS) : (int64_t)((v >> LOW_BITS) << ROW_SHIFT) | tag;
    }
    return n_out;
}

/* Append the rows of bucket entries [lo, hi) whose low is within `room` bits of `ql`. */
static inline int64_t scan_low(const void *E, int wide, int64_t lo, int64_t hi, int64_t ql, int64_t room,
                               int64_t *out, int64_t n_out, int64_t tag) {
    for (int64_t e = lo; e < hi; e++) {
        uint64_t v = entry_at(E, wide, e);
        if (popc((v & LOW_MASK) ^ (uint64_t)ql) <= room)
            out[n_out++] = tag < 0 ? (int64_t)(v >> LOW_BITS) : (int64_t)((v >> LOW_BITS) << ROW_SHIFT) | tag;
    }
    return n_out;
}

/* The table (among the first `upto` + 1) that owns row i for a query: the first in which it is within
 * the chunk radius. A row is reported only by its owner, so once, with no visited set. */
static inline int64_t owner_of(const Search *s, const uint64_t *code, const int64_t *qchunk, int64_t upto) {
    for (int64_t x = 0; x <= upto; x++)
        if (popc((uint64_t)(chunk_of(code, s->starts[x], s->widths[x]) ^ qchunk[x])) <= s->chunk_radius[x])
            return x;
    return -1;
}

typedef struct {
    int64_t shift, lbits, lshift, qh, ql, nmasks;
} TableQuery;

static inline TableQuery table_query(const Search *s, int64_t j, int64_t qchunk) {
    TableQuery t;
    int64_t b = s->bits[j];
    t.shift = s->widths[j] - b;
    t.lbits = min64(LOW_BITS, t.shift);
    t.lshift = t.shift - t.lbits;
    t.qh = qchunk >> t.shift;
    t.ql = (qchunk & (((int64_t)1 << t.shift) - 1)) >> t.lshift;
    t.nmasks = s->ball[min64(s->chunk_radius[j], s->nball - 1)];
    return t;
}

POPCNT_CLONES
static int multi_index_core(const Search *s, Out *o) {
    int64_t m = s->m, most = s->nmasks * s->lball[s->nlball - 1]; /* every bucket split the most */
    int64_t qchunk[MAX_CHUNKS], cand_table[MAX_CHUNKS + 1];
    int64_t *bucket = malloc((s->nmasks + 1) * sizeof(int64_t));
    int64_t *broom = malloc((s->nmasks + 1) * sizeof(int64_t));
    Probe *probes = malloc((most + 1) * sizeof(Probe));
    int64_t cap = 4096, *cand = malloc(cap * sizeof(int64_t));
    int status = -1;
    if (!bucket || !broom || !probes || !cand) goto done;
    for (int64_t q = 0; q < s->nq; q++) {
        const uint64_t *qq = s->queries + 4 * q;
        for (int64_t j = 0; j < m; j++) qchunk[j] = chunk_of(qq, s->starts[j], s->widths[j]);
        int64_t nc = 0;
        for (int64_t j = 0; j < m; j++) {
            cand_table[j] = nc;
            int64_t t = s->chunk_radius[j];
            if (t < 0) continue;
            TableQuery tq = table_query(s, j, qchunk[j]);
            /* Bucket bounds: independent loads, prefetched ahead so their misses overlap. */
            int64_t nb = 0;
            for (int64_t k = 0; k < tq.nmasks; k++) {
                int64_t mk = s->masks[k];
                if (mk >> s->bits[j]) continue;
                bucket[nb] = s->obase[j] + (tq.qh ^ mk);
                broom[nb++] = t - s->flips[k];
            }
            for (int64_t k = 0; k < min64(PREFETCH_AHEAD, nb); k++) __builtin_prefetch(s->offsets + bucket[k], 0, 3);
            int64_t total = 0, np = 0;
            for (int64_t k = 0; k < nb; k++) {
                if (k + PREFETCH_AHEAD < nb) __builtin_prefetch(s->offsets + bucket[k + PREFETCH_AHEAD], 0, 3);
                int64_t lo = s->offsets[bucket[k]], hi = s->offsets[bucket[k] + 1], room = broom[k];
                total += hi - lo;
                if (room == 0 || room >= s->nlball) {
                    probes[np++] = (Probe){lo, hi, room, tq.ql};
                    continue;
                }
                /* A room of 1-2 low bits: one exact-low lookup per allowed low instead of a scan. */
                for (int64_t x = 0; x < s->lball[room]; x++) {
                    int64_t lm = s->lmasks[x];
                    if (lm >> tq.lbits) continue;
                    probes[np++] = (Probe){lo, hi, 0, tq.ql ^ lm};
                }
            }
            if (nc + total > cap) {
                int64_t grown = cap * 2 > nc + total ? cap * 2 : nc + total;
                int64_t *c2 = realloc(cand, grown * sizeof(int64_t));
                if (!c2) goto done;
                cand = c2;
                cap = grown;
            }
            /* Candidates: exact-low probes usually read one cache line, prefetched probes ahead. */
            const void *E = (const char *)s->entries + (s->wide ? 8 : 4) * j * s->n;
            for (int64_t k = 0; k < min64(PREFETCH_AHEAD, np); k++) prefetch_entry(E, s->wide, guess(&probes[k], tq.lbits));
            for (int64_t k = 0; k < np; k++) {
                if (k + PREFETCH_AHEAD < np) prefetch_entry(E, s->wide, guess(&probes[k + PREFETCH_AHEAD], tq.lbits));
                const Probe *p = &probes[k];
                if (p->room == 0)
                    nc = exact_low(E, s->wide, p->lo, p->hi, guess(p, tq.lbits), p->ql, cand, nc, -1);
                else
                    nc = scan_low(E, s->wide, p->lo, p->hi, p->ql, p->room, cand, nc, -1);
            }
        }
        cand_table[m] = nc;
        /* Check the candidates against their codes, prefetched ahead. */
        int64_t j = 0;
        for (int64_t c = 0; c < nc; c++) {
            if (c + PREFETCH_AHEAD < nc) __builtin_prefetch(s->codes + 4 * cand[c + PREFETCH_AHEAD], 0, 3);
            while (cand_table[j + 1] <= c) j++;
            int64_t i = cand[c];
            const uint64_t *code = s->codes + 4 * i;
            int64_t d = distance(code, qq);
            if (d > s->radius || !s->alive[i] || owner_of(s, code, qchunk, j) != j) continue;
            if (out_push_int(o, q, i, (int32_t)d)) goto done;
        }
    }
    status = 0;
done:
    free(bucket);
    free(broom);
    free(probes);
    free(cand);
    return status;
}

static PyObject *run_search(PyObject *args, int (*core)(const Search *, Out *), int64_t max_queries) {
    Py_buffer b[NB];
    memset(b, 0, sizeof(b));
    Search s;
    if (parse_search(args, b, &s) || !need(s.nq <= max_queries, "too many queries for one call")) {
        release(b, NB);
        return NULL;
    }
    Out o = {0};
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = core(&s, &o);
    Py_END_ALLOW_THREADS
    release(b, NB);
    return out_result(&o, status);
}

static PyObject *py_multi_index_search(PyObject *self, PyObject *args) {
    return run_search(args, multi_index_core, INT64_MAX);
}

/* ---- large-batch sweep ---- */

/* Candidates of the probes order[p:] (sorted by bucket; a probe is query << kbits | mask number) into cand from *nc, stopping before a probe
 * whose bucket might not fit. Returns the next probe. */
POPCNT_CLONES
static int64_t sweep_table(const Search *s, int64_t j, const int64_t *order, int64_t total, int64_t p,
                           const int64_t *qh_of, const int64_t *ql_of, const int64_t *vmask, const int64_t *vroom,
                           int64_t kbits, int64_t lbits, int64_t *cand, int64_t cap, int64_t *nc_io) {
    const void *E = (const char *)s->entries + (s->wide ? 8 : 4) * j * s->n;
    const uint32_t *offsets = s->offsets + s->obase[j];
    int64_t nc = *nc_io;
    for (; p < total; p++) {
        /* The entries of probe p + SWEEP_AHEAD: buckets come in address order, but the lines a probe
         * reads skip most of each bucket, which the hardware prefetcher does not guess. */
        if (p + SWEEP_AHEAD < total) {
            int64_t f = order[p + SWEEP_AHEAD], fq = f >> kbits, fh = qh_of[fq] ^ vmask[f & (((int64_t)1 << kbits) - 1)];
            int64_t flo = offsets[fh], fhi = offsets[fh + 1];
            prefetch_entry(E, s->wide, flo + (((fhi - flo) * ql_of[fq]) >> lbits));
        }
        int64_t item = order[p], q = item >> kbits, k = item & (((int64_t)1 << kbits) - 1);
        int64_t h = qh_of[q] ^ vmask[k];
        int64_t lo = offsets[h], hi = offsets[h + 1];
        if (nc + (hi - lo) > cap) break;
        int64_t ql = ql_of[q], room = vroom[k], tag = (q << 4) | j;
        if (room >= s->nlball) {
            nc = scan_low(E, s->wide, lo, hi, ql, room, cand, nc, tag);
            continue;
        }
        /* Every low within `room` bits, looked up exactly in lines the sweep just loaded. */
        for (int64_t x = 0; x < s->lball[room]; x++) {
            int64_t lm = s->lmasks[x];
            if (lm >> lbits) continue;
            int64_t want = ql ^ lm;
            nc = exact_low(E, s->wide, lo, hi, lo + (((hi - lo) * want) >> lbits), want, cand, nc, tag);
        }
    }
    *nc_io = nc;
    return p;
}

/* Stable counting-sort pass of src[:nc] into dst by the nbits-bit digit at `shift`. */
static int radix_pass(const int64_t *src, int64_t *dst, int64_t nc, int64_t shift, int64_t nbits) {
    int64_t nd = (int64_t)1 << nbits;
    int64_t *counts = calloc(nd + 1, sizeof(int64_t));
    if (!counts) return -1;
    for (int64_t c = 0; c < nc; c++) counts[((src[c] >> shift) & (nd - 1)) + 1]++;
    for (int64_t g = 0; g < nd; g++) counts[g + 1] += counts[g];
    for (int64_t c = 0; c < nc; c++) dst[counts[(src[c] >> shift) & (nd - 1)]++] = src[c];
    free(counts);
    return 0;
}

/* Candidates (sorted by row) that are live, within the radius and owned by the table that found
 * them, packed as matches into out. Returns the match count. */
POPCNT_CLONES
static int64_t sweep_check(const Search *s, const int64_t *sorted, int64_t nc, const int64_t *qchunk, int64_t *out) {
    int64_t found = 0;
    for (int64_t c = 0; c < nc; c++) {
        if (c + PREFETCH_AHEAD < nc) __builtin_prefetch(s->codes + 4 * (sorted[c + PREFETCH_AHEAD] >> ROW_SHIFT), 0, 3);
        int64_t key = sorted[c], i = key >> ROW_SHIFT, q = (key >> 4) & (MAX_SLICE - 1), j = key & 15;
        const uint64_t *code = s->codes + 4 * i;
        int64_t d = distance(code, s->queries + 4 * q);
        if (d > s->radius || !s->alive[i] || owner_of(s, code, qchunk + q * s->m, j) != j) continue;
        out[found++] = (i << ROW_SHIFT) | (q << 9) | d;
    }
    return found;
}

static int sweep_core(const Search *s, Out *o) {
    int64_t nq = s->nq, m = s->m, maxbits = 0;
    for (int64_t j = 0; j < m; j++) maxbits = s->bits[j] > maxbits ? s->bits[j] : maxbits;
    int64_t cap = nq * 1024 > (1 << 16) ? nq * 1024 : (1 << 16), nc = 0;
    int64_t *qchunk = malloc((nq * m + 1) * sizeof(int64_t));
    int64_t *cand = malloc(cap * sizeof(int64_t)), *by_row = NULL;
    int64_t *qh_of = malloc((nq + 1) * sizeof(int64_t)), *ql_of = malloc((nq + 1) * sizeof(int64_t));
    int64_t *vmask = malloc((s->nmasks + 1) * sizeof(int64_t)), *vroom = malloc((s->nmasks + 1) * sizeof(int64_t));
    int64_t *counts = malloc((((int64_t)1 << maxbits) + 1) * sizeof(int64_t));
    int64_t *order = malloc((nq * s->nmasks + 1) * sizeof(int64_t));
    int status = -1;
    if (!qchunk || !cand || !qh_of || !ql_of || !vmask || !vroom || !counts || !order) goto done;
    for (int64_t q = 0; q < nq; q++)
        for (int64_t j = 0; j < m; j++) qchunk[q * m + j] = chunk_of(s->queries + 4 * q, s->starts[j], s->widths[j]);
    for (int64_t j = 0; j < m; j++) {
        int64_t t = s->chunk_radius[j];
        if (t < 0) continue;
        int64_t b = s->bits[j], nvalid = 0;
        TableQuery tq = table_query(s, j, 0);
        for (int64_t k = 0; k < tq.nmasks; k++) {
            if (s->masks[k] >> b) continue;
            vmask[nvalid] = s->masks[k];
            vroom[nvalid++] = t - s->flips[k];
        }
        for (int64_t q = 0; q < nq; q++) {
            int64_t qc = qchunk[q * m + j];
            qh_of[q] = qc >> tq.shift;
            ql_of[q] = (qc & (((int64_t)1 << tq.shift) - 1)) >> tq.lshift;
        }
        /* Counting sort of the (query, mask) probes by bucket: the table is read in address order. */
        int64_t nb = (int64_t)1 << b;
        memset(counts, 0, (nb + 1) * sizeof(int64_t));
        for (int64_t q = 0; q < nq; q++)
            for (int64_t k = 0; k < nvalid; k++) counts[(qh_of[q] ^ vmask[k]) + 1]++;
        for (int64_t h = 0; h < nb; h++) counts[h + 1] += counts[h];
        int64_t total = nq * nvalid, kbits = 0;
        while (((int64_t)1 << kbits) < nvalid) kbits++;
        for (int64_t q = 0; q < nq; q++)
            for (int64_t k = 0; k < nvalid; k++) order[counts[qh_of[q] ^ vmask[k]]++] = (q << kbits) | k;
        int64_t p = 0;
        for (;;) {
            p = sweep_table(s, j, order, total, p, qh_of, ql_of, vmask, vroom, kbits, tq.lbits, cand, cap, &nc);
            if (p >= total) break;
            int64_t grown = 2 * cap + (1 << 16);
            int64_t *c2 = realloc(cand, grown * sizeof(int64_t));
            if (!c2) goto done;
            cand = c2;
            cap = grown;
        }
    }
    /* Two-pass LSD radix sort of the candidates by row group: the code reads become one forward pass. */
    int64_t key_bits = 1;
    while (((int64_t)1 << key_bits) <= (s->n >> ROW_GROUP_BITS)) key_bits++;
    int64_t low = key_bits / 2;
    by_row = malloc((nc + 1) * sizeof(int64_t));
    if (!by_row || radix_pass(cand, by_row, nc, ROW_SHIFT + ROW_GROUP_BITS, low) ||
        radix_pass(by_row, cand, nc, ROW_SHIFT + ROW_GROUP_BITS + low, key_bits - low))
        goto done;
    int64_t found = sweep_check(s, cand, nc, qchunk, by_row);
    if (out_reserve(o, found)) goto done;
    for (int64_t f = 0; f < found; f++) {
        int64_t v = by_row[f];
        o->r[f] = v >> ROW_SHIFT;
        o->q[f] = (v >> 9) & (MAX_SLICE - 1);
        ((int32_t *)o->d)[f] = (int32_t)(v & 511);
    }
    o->n = found;
    status = 0;
done:
    free(qchunk);
    free(cand);
    free(by_row);
    free(qh_of);
    free(ql_of);
    free(vmask);
    free(vroom);
    free(counts);
    free(order);
    return status;
}

static PyObject *py_sweep_search(PyObject *self, PyObject *args) {
    return run_search(args, sweep_core, MAX_SLICE);
}

/* ---- PDNA brute force ---- */

SIMD_CLONES
static int euclidean_core(const uint8_t *vectors, const uint8_t *alive, int64_t lo, int64_t hi,
                          const uint8_t *queries, int64_t nq, int64_t dim, int64_t limit, Out *o) {
    /* Blocks of 512 rows (72 KB of vectors) kept in cache while every query meets them; squared
     * distances in exact integers (<= 144 * 255^2), compared with an integer limit. */
    for (int64_t start = lo; start < hi; start += 512) {
        int64_t stop = min64(start + 512, hi);
        for (int64_t q = 0; q < nq; q++) {
            const uint8_t *qv = queries + dim * q;
            for (int64_t i = start; i < stop; i++) {
                if (!alive[i]) continue;
                const uint8_t *v = vectors + dim * i;
                int32_t acc = 0;
                for (int64_t c = 0; c < dim; c++) {
                    int32_t diff = (int32_t)v[c] - (int32_t)qv[c];
                    acc += diff * diff;
                }
                if (acc > limit) continue;
                if (o->n == o->cap && out_reserve(o, o->n + 1)) return -1;
                o->q[o->n] = q;
                o->r[o->n] = i;
                ((float *)o->d)[o->n] = (float)sqrt((double)acc);
                o->n++;
            }
        }
    }
    return 0;
}

static PyObject *py_euclidean_scan(PyObject *self, PyObject *args) {
    Py_buffer b[3] = {{0}};
    long long lo, hi, dim, limit;
    if (!PyArg_ParseTuple(args, "y*y*LLy*LL", &b[0], &b[1], &lo, &hi, &b[2], &dim, &limit)) goto fail;
    int64_t n = b[1].len;
    if (!need(0 < dim && dim <= 4096, "bad vector size") || !need(b[0].len == dim * n, "vectors and alive differ in rows") ||
        !need(0 <= lo && lo <= hi && hi <= n, "row range out of bounds") ||
        !need(b[2].len % dim == 0, "queries are not vector rows"))
        goto fail;
    Out o = {0};
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = euclidean_core(b[0].buf, b[1].buf, lo, hi, b[2].buf, b[2].len / dim, dim, limit, &o);
    Py_END_ALLOW_THREADS
    release(b, 3);
    return out_result(&o, status);
fail:
    release(b, 3);
    return NULL;
}

static PyMethodDef methods[] = {
    {"hamming_scan", py_hamming_scan, METH_VARARGS,
     "hamming_scan(codes, alive, lo, hi, queries, radius) -> (query, row, distance) bytearrays"},
    {"build_table", py_build_table, METH_VARARGS,
     "build_table(codes, bits, start, width, offsets, entries): fill one chunk table in place"},
    {"multi_index_search", py_multi_index_search, METH_VARARGS,
     "multi_index_search(codes, alive, offsets, obase, entries, bits, starts, widths, queries, radius, "
     "chunk_radius, masks, flips, ball, lmasks, lball) -> (query, row, distance) bytearrays"},
    {"sweep_search", py_sweep_search, METH_VARARGS,
     "sweep_search(same arguments as multi_index_search) -> (query, row, distance) bytearrays, by row"},
    {"euclidean_scan", py_euclidean_scan, METH_VARARGS,
     "euclidean_scan(vectors, alive, lo, hi, queries, dim, limit) -> (query, row, distance) bytearrays"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_native", .m_doc = "The index kernels in C.", .m_size = -1, .m_methods = methods};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *mod = PyModule_Create(&module);
    if (!mod) return NULL;
    if (PyModule_AddIntConstant(mod, "LOW_BITS", LOW_BITS) || PyModule_AddIntConstant(mod, "MAX_SLICE", MAX_SLICE) ||
        PyModule_AddIntConstant(mod, "MAX_CHUNKS", MAX_CHUNKS)) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
