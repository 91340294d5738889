"""Large PdqIndex batches (the sweep through the tables) answer exactly what query-by-query search does."""

from __future__ import annotations

import numpy as np
import pytest

from hashhub.index import PdqIndex, _pdq_segment
from tests.test_index_pdq import as_dict, clustered, distances, queries_for, within


@pytest.fixture(scope="module")
def index() -> tuple[PdqIndex, np.ndarray, np.ndarray]:
    """Main tables, a middle segment, a delta, and removed ids in each."""
    rng = np.random.default_rng(77)
    codes = np.concatenate(
        [
            clustered(rng, centres=300, per_centre=100, max_flips=40),
            rng.integers(0, 256, (40_000, 32), dtype=np.uint8),
        ]
    )
    ids = rng.choice(10**10, size=codes.shape[0], replace=False).astype(np.int64)
    main, mid, delta = 66_000, 69_000, codes.shape[0]
    ix = PdqIndex(delta_limit=1_000_000)
    ix.add(ids[:main], codes[:main])
    ix.compact()
    ix.add(ids[main:mid], codes[main:mid])
    ix._merge_locked(full=False)  # into the middle segment
    ix.add(ids[mid:delta], codes[mid:delta])
    assert ix._main.tables is not None and len(ix._mid) == mid - main and len(ix._delta) == delta - mid
    removed = ids[rng.choice(codes.shape[0], 3_000, replace=False)]
    ix.remove(removed)
    keep = ~np.isin(ids, removed)
    return ix, ids[keep], codes[keep]


@pytest.mark.parametrize("radius", [0, 31, 63])
def test_large_batches_equal_brute_force(index, radius: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small slices force the sweep on a few queries (checked against brute force); at R 63 the
    widest probes scan their buckets instead of looking lows up, and that stays exact too."""
    ix, ids, codes = index
    monkeypatch.setattr(_pdq_segment, "_SCAN_ROW_NS", 1e12)  # tables even where a scan would win
    monkeypatch.setattr(_pdq_segment, "SWEEP_MIN", 5)
    monkeypatch.setattr(_pdq_segment, "SWEEP_MIN_ROWS", 0)
    queries = queries_for(np.random.default_rng(radius), codes, 24)
    total = 0
    for q, match in zip(queries, ix.search(queries, radius=radius), strict=True):
        expected = within(ids, distances(codes, q), radius)
        assert as_dict(match) == expected
        assert list(match[1]) == sorted(match[1])
        total += len(expected)
    assert total >= 5  # at R 0 only the stored copies among the queries match


def test_a_real_large_batch_equals_the_per_query_path(index, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch above the sweep threshold, slices of default size, against one query at a time."""
    ix, _, codes = index
    monkeypatch.setattr(_pdq_segment, "_SCAN_ROW_NS", 1e12)
    monkeypatch.setattr(_pdq_segment, "SWEEP_MIN_ROWS", 0)  # the sweep pays from ~2M rows on
    queries = queries_for(np.random.default_rng(5), codes, 2 * _pdq_segment.SWEEP_MIN + 100)
    swept = ix.search(queries)
    monkeypatch.setattr(_pdq_segment, "SWEEP_MIN", 1 << 40)
    one_by_one = ix.search(queries)
    found = 0
    for a, b in zip(swept, one_by_one, strict=True):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        found += len(a[0])
    assert found > queries.shape[0]
