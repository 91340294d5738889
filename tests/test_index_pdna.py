"""PdnaIndex: exact Euclidean-threshold search over 144-byte vectors, updates and files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hashhub.index import IndexInputError, PdnaIndex


def reference(ids: np.ndarray, vectors: np.ndarray, query: np.ndarray, threshold: float) -> dict[int, float]:
    d = np.sqrt(((vectors.astype(np.float64) - query.astype(np.float64)) ** 2).sum(axis=1))
    hit = d <= threshold
    return dict(zip(ids[hit].tolist(), d[hit].tolist(), strict=True))


def as_dict(match: tuple[np.ndarray, np.ndarray]) -> dict[int, float]:
    ids, dist = match
    assert ids.dtype == np.int64 and dist.dtype == np.float32
    return dict(zip(ids.tolist(), dist.tolist(), strict=True))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    centres = rng.integers(0, 256, (200, 144))
    noise = rng.integers(-60, 61, (200, 100, 144))
    vectors = np.clip(centres[:, None, :] + noise, 0, 255).reshape(-1, 144).astype(np.uint8)
    return np.arange(vectors.shape[0], dtype=np.int64) * 3, vectors


def test_results_equal_brute_force(data) -> None:
    ids, vectors = data
    px = PdnaIndex()
    px.add(ids, vectors)
    rng = np.random.default_rng(5)
    queries = vectors[rng.integers(0, vectors.shape[0], 30)]
    total = 0
    for threshold in (0.0, 400.0, 1800.0):
        for q, match in zip(queries, px.search(queries, threshold=threshold), strict=True):
            got, expected = as_dict(match), reference(ids, vectors, q, threshold)
            assert got.keys() == expected.keys()
            assert np.allclose([got[k] for k in expected], list(expected.values()), rtol=1e-6)
            total += len(got)
    assert total > 30


def test_threshold_is_inclusive() -> None:
    px = PdnaIndex()
    a = np.zeros(144, np.uint8)
    b = a.copy()
    b[:4] = 3  # distance exactly 6
    px.add([1], b[None, :])
    assert as_dict(px.search(a[None, :], threshold=6.0)[0]) == {1: 6.0}
    assert as_dict(px.search(a[None, :], threshold=5.999)[0]) == {}


def test_upsert_remove_and_round_trip(tmp_path: Path, data) -> None:
    ids, vectors = data
    px = PdnaIndex()
    px.add(ids[:100], vectors[:100])
    px.add(ids[:1], vectors[500:501])  # id 0 now carries another vector
    px.remove(ids[1:60])
    assert len(px) == 41
    assert 0 not in px.search(vectors[:1], threshold=0.0)[0][0].tolist()
    assert px.search(vectors[500:501], threshold=0.0)[0][0].tolist() == [0]
    px.save(tmp_path / "pdna.hhx")
    again = PdnaIndex.load(tmp_path / "pdna.hhx")
    assert len(again) == 41
    q = vectors[60:70]
    assert [as_dict(m) for m in again.search(q)] == [as_dict(m) for m in px.search(q)]


@pytest.mark.parametrize("threshold", [-1.0, float("nan"), "1800", True])
def test_bad_threshold_is_refused(threshold) -> None:
    with pytest.raises(IndexInputError, match="threshold"):
        PdnaIndex().search(np.zeros((1, 144), np.uint8), threshold=threshold)


def test_bad_vectors_are_refused() -> None:
    with pytest.raises(IndexInputError, match=r"shape \(n, 144\)"):
        PdnaIndex().add([1], np.zeros((1, 143), np.uint8))
