"""PdqIndex tables: exact through the tables at every radius, compact, and files of older layouts load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hashhub.index import PdqIndex, _fileformat, _kernels, _pdq_segment
from tests.test_index_pdq import as_dict, clustered, distances, queries_for, within


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(404)
    codes = clustered(rng, centres=400, per_centre=100, max_flips=40)
    ids = rng.choice(10**9, size=codes.shape[0], replace=False).astype(np.int64)
    return ids, codes


def test_tables_alone_are_exact_up_to_radius_63(data, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the scan fallback priced out, every radius goes through the chunk tables and still equals
    brute force: the refined pigeonhole radii, the low-bit filter and the one-owner rule hold."""
    ids, codes = data
    ix = PdqIndex()
    ix.add(ids, codes)
    monkeypatch.setattr(_pdq_segment, "_SCAN_ROW_NS", 1e12)
    rng = np.random.default_rng(1)
    queries = queries_for(rng, codes, 10)
    reference = [distances(codes, q) for q in queries]
    checked = 0
    for radius in (0, 1, 7, 15, 23, 31, 32, 40, 47, 55, 63):
        for d, match in zip(reference, ix.search(queries, radius=radius), strict=True):
            assert as_dict(match) == within(ids, d, radius), f"radius {radius}"
            checked += len(match[0])
    assert checked > 100


def test_table_memory_is_four_bytes_a_row_and_chunk(data) -> None:
    """What keeps 10M codes under 1 GB: one 4-byte entry per row and chunk, small bucket bounds."""
    ids, codes = data
    ix = PdqIndex()
    ix.add(ids, codes)
    tables = ix._main.tables
    assert tables is not None
    n = codes.shape[0]
    assert tables.entries.nbytes == 4 * n * _kernels.N_CHUNKS
    assert tables.offsets.nbytes < tables.entries.nbytes // 10  # bounds: a small fraction
    ten_million = 10_000_000
    bounds = _pdq_segment.offset_bases(_pdq_segment.bucket_bits(ten_million))[-1] * 4
    arrays = ten_million * (8 + 32 + 1 + 4 * _kernels.N_CHUNKS) + bounds
    assert arrays <= 1_000_000_000


def write_older_file(path: Path, ids: np.ndarray, codes: np.ndarray, meta: dict) -> None:
    """A file as an earlier hashhub wrote it: the same container, tables in another layout."""
    order = np.argsort(ids)
    arrays = {
        "ids": ids[order],
        "codes": codes[order],
        "alive": np.ones(ids.shape[0], np.uint8),
        "offsets": np.zeros((10, 9), np.uint32),
        "lows": np.zeros((10, ids.shape[0]), np.uint8),
        "rows": np.zeros((10, ids.shape[0]), np.uint32),
    }
    base = {"count": int(ids.shape[0]), "rows": int(ids.shape[0])}
    _fileformat.write(path, b"HHIXPDQ1", base | meta, arrays)


@pytest.mark.parametrize(
    "meta",
    [
        {"bucket_bits": 21},  # layout 1: separate low and row columns, ten 25/26-bit chunks
        {"layout": 2, "bucket_bits": [12] * 10, "chunk_widths": [26] * 6 + [25] * 4},
    ],
    ids=["layout-1", "other-chunking"],
)
def test_files_with_older_tables_load_and_answer_exactly(tmp_path: Path, data, meta: dict) -> None:
    ids, codes = data
    path = tmp_path / "old.hhx"
    write_older_file(path, ids, codes, meta)
    ix = PdqIndex.load(path)
    assert len(ix) == ids.shape[0]
    rng = np.random.default_rng(2)
    queries = queries_for(rng, codes, 12)
    expected = [within(ids, distances(codes, q), 31) for q in queries]
    assert [as_dict(m) for m in ix.search(queries, 31)] == expected
    # The next save writes the current layout, which reloads without a rebuild.
    ix.save(tmp_path / "new.hhx")
    again = PdqIndex.load(tmp_path / "new.hhx")
    assert again._main.tables is not None
    assert [as_dict(m) for m in again.search(queries, 31)] == expected


def test_background_merges_leave_the_main_tables_alone_until_the_middle_level_fills(data) -> None:
    """Small writes are merged into a middle segment, O(recent additions); the O(n) rebuild of the
    main tables waits until that segment holds a sixteenth of the main one. Answers stay exact."""
    ids, codes = data
    rng = np.random.default_rng(5)
    ix = PdqIndex(delta_limit=400)
    ix.add(ids, codes)
    main = ix._main
    model = dict(zip(ids.tolist(), codes, strict=True))
    fresh = 10**10
    for _ in range(5):
        new_codes = rng.integers(0, 256, (500, 32), dtype=np.uint8)
        new_ids = np.arange(fresh, fresh + 500)
        fresh += 500
        ix.add(new_ids, new_codes)
        assert as_dict(ix.search_one(new_codes[0], 0)) == {int(new_ids[0]): 0}  # matchable at once
        model.update(zip(new_ids.tolist(), new_codes, strict=True))
        gone = rng.choice(np.fromiter(model, np.int64), 50, replace=False)
        ix.remove(gone)
        for g in gone.tolist():
            del model[g]
        ix.wait_merged()
    assert ix._main is main and len(ix._mid) > 0
    all_ids = np.fromiter(model, np.int64)
    all_codes = np.stack(list(model.values()))
    for q in queries_for(rng, all_codes, 10):
        assert as_dict(ix.search_one(q, 31)) == within(all_ids, distances(all_codes, q), 31)
    # Past a sixteenth of the main rows, the next merge rebuilds the main tables with everything.
    more = rng.integers(0, 256, (len(main) // 16, 32), dtype=np.uint8)
    ix.add(np.arange(fresh, fresh + more.shape[0]), more)
    ix.wait_merged()
    ix.add([-7], more[:1])
    ix.wait_merged()
    assert ix._main is not main and len(ix) == len(model) + more.shape[0] + 1
    assert as_dict(ix.search_one(more[0], 0)) == {fresh: 0, -7: 0}


def test_wide_entries_for_more_than_16m_rows_answer_the_same(data, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past 2**24 rows a row number no longer fits beside the 8 filter bits in 4 bytes; the 8-byte
    entries used then (forced here on a small index) give the same answers."""
    ids, codes = data
    narrow = PdqIndex()
    narrow.add(ids, codes)
    monkeypatch.setattr(_pdq_segment, "entry_dtype", lambda n: np.uint64)
    wide = PdqIndex()
    wide.add(ids, codes)
    assert wide._main.tables.entries.dtype == np.uint64
    queries = queries_for(np.random.default_rng(6), codes, 20)
    got = [as_dict(m) for m in wide.search(queries, 31)]
    assert got == [as_dict(m) for m in narrow.search(queries, 31)]
    assert sum(map(len, got)) > 20


@pytest.mark.parametrize("sweep", [False, True])
def test_crowded_low_values_are_found_exactly(sweep: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of near-copies sharing their first chunks pile onto one low value of one bucket, which
    shifts every later low's place in that bucket far from where a probe first looks; probes of that
    bucket (query by query and in the sweep) still find exactly what brute force finds."""
    rng = np.random.default_rng(12)
    base = rng.integers(0, 256, 32, dtype=np.uint8)
    copies = np.repeat(base[None, :], 3_000, axis=0)
    copies[:, 8:] ^= (rng.random((3_000, 24)) < 0.03).astype(np.uint8) << rng.integers(
        0, 8, (3_000, 24)
    ).astype(np.uint8)
    # Neighbours of the crowd: the same first bytes but one or two of the bucket's low bits changed.
    near = np.repeat(base[None, :], 600, axis=0)
    near[:, 2] ^= rng.integers(1, 256, 600).astype(np.uint8)
    codes = np.concatenate([copies, near, rng.integers(0, 256, (40_000, 32), dtype=np.uint8)])
    ids = rng.choice(10**9, size=codes.shape[0], replace=False).astype(np.int64)
    ix = PdqIndex()
    ix.add(ids, codes)
    monkeypatch.setattr(_pdq_segment, "_SCAN_ROW_NS", 1e12)
    if sweep:
        monkeypatch.setattr(_pdq_segment, "SWEEP_MIN", 5)
        monkeypatch.setattr(_pdq_segment, "SWEEP_MIN_ROWS", 0)
    queries = np.repeat(base[None, :], 40, axis=0)
    queries[:, 2] ^= rng.integers(0, 256, 40).astype(np.uint8)
    queries[20:, 1] ^= rng.integers(0, 256, 20).astype(np.uint8)
    found = 0
    for radius in (0, 12, 31):
        for q, match in zip(queries, ix.search(queries, radius=radius), strict=True):
            assert as_dict(match) == within(ids, distances(codes, q), radius), f"radius {radius}"
            found += len(match[0])
    assert found > 10_000
