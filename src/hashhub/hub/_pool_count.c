/* The dashboard's counts over the pool's columns in one pass (hashhub.hub._pool_count): numpy would
 * need a masked copy and a bincount per breakdown (six passes, ~150 ms at 3.5M items on a loaded
 * 2-core machine); this reads each column once, the GIL released. `pool_stats.count` is the caller. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define ACTIVE 1
#define DISPUTED 2

/* Counts indexed by a column value, sized by the caller to the column's max + 1. */
static inline void bump(int64_t *counts, int64_t len, int64_t v) {
    if (v < 0) v += len; /* as numpy indexing would (the caller sizes by max, so never in practice) */
    if (0 <= v && v < len) counts[v]++;
}

typedef struct {
    const int8_t *status;
    const int32_t *lst, *contrib;
    const int16_t *grade;
    const uint32_t *signals;
    const uint16_t *day;
    int64_t n, first_day, days, own, nseen, nlist, ncontrib, ngrade;
    int scoped;
    const uint8_t *seen_lists;
    int64_t *out_list, *out_contrib, *out_grade, *by_status, *by_bit, *per_day;
} Count;

static int64_t count_core(const Count *c) {
    int64_t by_byte[4][256];
    memset(by_byte, 0, sizeof(by_byte));
    int64_t live = 0;
    for (int64_t i = 0; i < c->n; i++) {
        if (c->scoped) {
            int64_t li = c->lst[i];
            if (c->contrib[i] != c->own && !(0 <= li && li < c->nseen && c->seen_lists[li])) continue;
        }
        int64_t s = c->status[i];
        bump(c->by_status, 4, s);
        if (s != ACTIVE && s != DISPUTED) continue;
        live++;
        bump(c->out_list, c->nlist, c->lst[i]);
        bump(c->out_contrib, c->ncontrib, c->contrib[i]);
        bump(c->out_grade, c->ngrade, c->grade[i]);
        uint32_t bits = c->signals[i];
        by_byte[0][bits & 0xFF]++; /* one increment a byte, not one per bit (the bit loop cost 3x) */
        if (bits > 0xFF)
            for (int b = 1; b < 4; b++) by_byte[b][(bits >> (8 * b)) & 0xFF]++;
        int64_t d = (int64_t)c->day[i] - c->first_day;
        if (0 <= d && d < c->days) c->per_day[d]++;
    }
    for (int b = 0; b < 4; b++)
        for (int v = 1; v < 256; v++)
            for (int k = 0; k < 8; k++)
                if (v & (1 << k)) c->by_bit[8 * b + k] += by_byte[b][v];
    return live;
}

enum { B_STATUS, B_LIST, B_CONTRIB, B_GRADE, B_SIGNALS, B_DAY, B_OUT_LIST, B_OUT_CONTRIB, B_OUT_GRADE,
       B_SEEN, B_BY_STATUS, B_BY_BIT, B_PER_DAY, NB };

/* count(status i1, list i4, contributor i4, grade i2, signals u4, day u2, first_day, out_list,
 * out_contrib, out_grade, scoped, seen_lists u1, own, by_status, by_bit, per_day) -> live; the
 * outputs are int64 arrays (zeros on entry) filled in place. */
static PyObject *py_count(PyObject *self, PyObject *args) {
    Py_buffer b[NB];
    memset(b, 0, sizeof(b));
    long long first_day, own;
    int scoped;
    Count c;
    PyObject *res = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*Lw*w*w*py*Lw*w*w*", &b[B_STATUS], &b[B_LIST], &b[B_CONTRIB],
                          &b[B_GRADE], &b[B_SIGNALS], &b[B_DAY], &first_day, &b[B_OUT_LIST], &b[B_OUT_CONTRIB],
                          &b[B_OUT_GRADE], &scoped, &b[B_SEEN], &own, &b[B_BY_STATUS], &b[B_BY_BIT],
                          &b[B_PER_DAY]))
        goto done;
    int64_t n = b[B_STATUS].len;
    if (b[B_LIST].len != 4 * n || b[B_CONTRIB].len != 4 * n || b[B_GRADE].len != 2 * n ||
        b[B_SIGNALS].len != 4 * n || b[B_DAY].len != 2 * n || b[B_BY_STATUS].len != 4 * 8 ||
        b[B_BY_BIT].len != 32 * 8) {
        PyErr_SetString(PyExc_ValueError, "pool count: columns differ in length or type");
        goto done;
    }
    c = (Count){b[B_STATUS].buf, b[B_LIST].buf, b[B_CONTRIB].buf, b[B_GRADE].buf, b[B_SIGNALS].buf,
                b[B_DAY].buf, n, first_day, b[B_PER_DAY].len / 8, own, b[B_SEEN].len, b[B_OUT_LIST].len / 8,
                b[B_OUT_CONTRIB].len / 8, b[B_OUT_GRADE].len / 8, scoped, b[B_SEEN].buf, b[B_OUT_LIST].buf,
                b[B_OUT_CONTRIB].buf, b[B_OUT_GRADE].buf, b[B_BY_STATUS].buf, b[B_BY_BIT].buf,
                b[B_PER_DAY].buf};
    int64_t live;
    Py_BEGIN_ALLOW_THREADS
    live = count_core(&c);
    Py_END_ALLOW_THREADS
    res = PyLong_FromLongLong(live);
done:
    for (int i = 0; i < NB; i++)
        if (b[i].obj) PyBuffer_Release(&b[i]);
    return res;
}

static PyMethodDef methods[] = {
    {"count", py_count, METH_VARARGS, "The pool's dashboard counts in one pass (see pool_stats.count)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_pool_count", .m_doc = "Pool counts in C.", .m_size = -1, .m_methods = methods};

PyMODINIT_FUNC PyInit__pool_count(void) { return PyModule_Create(&module); }
