"""The C kernels (`hashhub.index._native`): tables byte-identical to the reference algorithm, bad
arguments refused with an exception, and a matching process that never loads numba or LLVM."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hashhub.index import _kernels, _native, _pdq_segment
from tests.test_index_pdq import clustered


def reference_table(codes: np.ndarray, bits: int, start: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The table layout in numpy: rows stably sorted by the chunk's top bits + low bits, bucket bounds
    from the counts, entries row << LOW_BITS | low (what saved files and pool files hold)."""
    bit = start + np.arange(width)
    words = codes[:, bit // 64] >> (bit % 64).astype(np.uint64) & np.uint64(1)
    key = (words.astype(np.int64) << np.arange(width)).sum(axis=1)
    shift = width - bits
    lbits = min(_kernels.LOW_BITS, shift)
    sort_key = key >> (shift - lbits)
    order = np.argsort(sort_key, kind="stable")
    low = sort_key[order] & ((1 << lbits) - 1)
    counts = np.bincount(key >> shift, minlength=1 << bits)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.uint32)
    return offsets, (order << _kernels.LOW_BITS) | low


@pytest.mark.parametrize("kind", ["uniform", "clustered"])
def test_tables_equal_the_reference_layout(kind: str) -> None:
    rng = np.random.default_rng(12)
    if kind == "uniform":
        codes8 = rng.integers(0, 256, (50_000, 32), dtype=np.uint8)
    else:
        codes8 = clustered(rng, centres=200, per_centre=200, max_flips=40)
    codes = codes8.view(np.uint64).reshape(-1, 4)
    n = codes.shape[0]
    for bits_each in (_pdq_segment.bucket_bits(n), np.full(_kernels.N_CHUNKS, 16, np.int64)):
        for dtype in (np.uint32, np.uint64):  # 4-byte entries, and the 8-byte ones past 2**24 rows
            tables = _pdq_segment.build_tables(codes, bits_each) if dtype is np.uint32 else None
            for j in range(_kernels.N_CHUNKS):
                start, width, bits = (
                    int(x[j]) for x in (_kernels.CHUNK_STARTS, _kernels.CHUNK_WIDTHS, bits_each)
                )
                offsets, entries = reference_table(codes, bits, start, width)
                got_offsets = np.zeros(offsets.shape[0], np.uint32)
                got_entries = np.empty(n, dtype)
                _kernels.build_table(codes, bits, start, width, got_offsets, got_entries)
                assert np.array_equal(got_offsets, offsets) and np.array_equal(got_entries, entries)
                if tables is not None:  # the index's own build (several threads) lays out the same
                    base = tables.obase
                    assert np.array_equal(tables.offsets[base[j] : base[j + 1]], offsets)
                    assert np.array_equal(tables.entries[j], entries)


def test_wrong_sizes_raise_instead_of_reading_past_a_buffer() -> None:
    codes = np.zeros((10, 4), np.uint64)
    alive = np.ones(10, np.uint8)
    with pytest.raises(ValueError, match="differ in rows"):
        _native.hamming_scan(codes, alive[:9], 0, 9, codes[:1], 3)
    with pytest.raises(ValueError, match="out of bounds"):
        _native.hamming_scan(codes, alive, 0, 11, codes[:1], 3)
    with pytest.raises(ValueError, match="contiguous"):  # a strided view is not one buffer
        _native.hamming_scan(codes, alive, 0, 10, codes[::2], 3)
    with pytest.raises(ValueError, match="offsets too short"):
        _native.build_table(codes, 8, 0, 24, np.zeros(10, np.uint32), np.empty(10, np.uint32))
    with pytest.raises(ValueError, match="vectors and alive"):
        _native.euclidean_scan(
            np.zeros((3, 144), np.uint8), alive, 0, 3, np.zeros((1, 144), np.uint8), 144, 9
        )


def test_matching_never_loads_numba_or_llvm() -> None:
    """The hub's serving path (every CLI command registered, as `hashhub hub serve` does, the app
    module, PDQ and PDNA indexes built and searched, the pool's dashboard counts) runs on the C
    kernels: numba and llvmlite cost ~55 MB resident a process even before compiling anything."""
    code = """
import sys
import numpy as np
import hashhub.cli
import hashhub.hub.app
from hashhub.hub import pool_stats
from hashhub.hub.columns import Columns
from hashhub.index import PdnaIndex, PdqIndex, _pdq_segment

rng = np.random.default_rng(0)
codes = rng.integers(0, 256, (_pdq_segment.MIN_TABLE_ROWS + 10, 32), dtype=np.uint8)
ix = PdqIndex()
ix.add(np.arange(codes.shape[0]), codes)
assert ix._main.tables is not None
_pdq_segment.SWEEP_MIN, _pdq_segment.SWEEP_MIN_ROWS = 4, 0
assert ix.search(codes[:8])[0][0].tolist() == [0]
assert ix.search(codes[:1], dihedral=True)[0][0][0] == 0
px = PdnaIndex()
px.add([1, 2], np.zeros((2, 144), np.uint8))
assert len(px.search(np.zeros((1, 144), np.uint8))[0][0]) == 2
cols = Columns()
cols.ensure(3)
cols["status"][:3] = 1
assert pool_stats.count(cols, 0, 7).live == 3
hashhub.cli._register()
print(sorted(m for m in sys.modules if m.split(".")[0] in ("numba", "llvmlite")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
