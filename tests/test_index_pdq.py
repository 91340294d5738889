"""PdqIndex: exact radius search (equal to brute force), upserts and removals while searching, files."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hashhub.index import IndexFileError, IndexInputError, PdqIndex

RNG_SEED = 20260


def distances(codes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """The reference: Hamming distance to every stored code, counted bit by bit (no shared code)."""
    return np.unpackbits(codes ^ query, axis=1).sum(axis=1)


def brute_force(ids: np.ndarray, codes: np.ndarray, query: np.ndarray, radius: int) -> dict[int, int]:
    """The reference answer: {id: distance} for every stored code within `radius`."""
    return within(ids, distances(codes, query), radius)


def within(ids: np.ndarray, d: np.ndarray, radius: int) -> dict[int, int]:
    hit = d <= radius
    return dict(zip(ids[hit].tolist(), d[hit].tolist(), strict=True))


def as_dict(match: tuple[np.ndarray, np.ndarray]) -> dict[int, int]:
    ids, dist = match
    assert ids.dtype == np.int64
    assert len(set(ids.tolist())) == len(ids), "an id is reported twice"
    return dict(zip(ids.tolist(), dist.tolist(), strict=True))


def mutate_many(rng: np.random.Generator, codes: np.ndarray, flips: np.ndarray) -> np.ndarray:
    """Each row with flips[i] distinct random bits inverted."""
    order = np.argsort(rng.random((codes.shape[0], 256)), axis=1)  # a random bit order per row
    mask = np.zeros((codes.shape[0], 256), np.uint8)
    chosen = np.arange(256)[None, :] < flips[:, None]
    np.put_along_axis(mask, order, chosen.astype(np.uint8), axis=1)
    return codes ^ np.packbits(mask, axis=1)


def clustered(rng: np.random.Generator, centres: int, per_centre: int, max_flips: int) -> np.ndarray:
    """Skewed data like real lists: near-duplicates of a few images, at distances 0..max_flips."""
    base = rng.integers(0, 256, (centres, 32), dtype=np.uint8)
    rows = np.repeat(base, per_centre, axis=0)
    return mutate_many(rng, rows, rng.integers(0, max_flips + 1, rows.shape[0]))


@pytest.fixture(scope="module")
def uniform_index() -> tuple[PdqIndex, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED)
    codes = rng.integers(0, 256, (60_000, 32), dtype=np.uint8)
    ids = rng.choice(10**12, size=60_000, replace=False).astype(np.int64)
    ix = PdqIndex()
    ix.add(ids, codes)
    return ix, ids, codes


@pytest.fixture(scope="module")
def clustered_index() -> tuple[PdqIndex, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED + 1)
    codes = clustered(rng, centres=1_000, per_centre=100, max_flips=40)
    ids = np.arange(codes.shape[0], dtype=np.int64) * 7 - 5_000
    ix = PdqIndex()
    ix.add(ids, codes)
    return ix, ids, codes


def queries_for(rng: np.random.Generator, codes: np.ndarray, n: int) -> np.ndarray:
    """Stored codes, near copies at distances up to 45, and unrelated random codes."""
    picks = codes[rng.integers(0, codes.shape[0], n)]
    near = mutate_many(rng, picks, rng.integers(0, 46, n))
    return np.concatenate([picks[: n // 4], near, rng.integers(0, 256, (n // 4, 32), dtype=np.uint8)])


@pytest.mark.parametrize("radius", [0, 31, 63])
@pytest.mark.parametrize("data", ["uniform_index", "clustered_index"])
def test_results_equal_brute_force(data: str, radius: int, request: pytest.FixtureRequest) -> None:
    ix, ids, codes = request.getfixturevalue(data)
    rng = np.random.default_rng(radius)
    queries = queries_for(rng, codes, 40)
    results = ix.search(queries, radius=radius)
    assert len(results) == queries.shape[0]
    total = 0
    for q, match in zip(queries, results, strict=True):
        expected = brute_force(ids, codes, q, radius)
        assert as_dict(match) == expected
        assert list(match[1]) == sorted(match[1]), "nearest matches come first"
        total += len(expected)
    assert total >= 10  # the comparison is not vacuous


def test_every_radius_up_to_63_is_exact_on_clustered_data(clustered_index) -> None:
    ix, ids, codes = clustered_index
    rng = np.random.default_rng(3)
    queries = queries_for(rng, codes, 8)
    reference = [distances(codes, q) for q in queries]
    for radius in range(0, 64, 3):
        for d, match in zip(reference, ix.search(queries, radius=radius), strict=True):
            assert as_dict(match) == within(ids, d, radius), f"radius {radius}"


def test_single_query_path_matches_batch(uniform_index) -> None:
    ix, _, codes = uniform_index
    code = codes[123]
    ids, dist = ix.search_one(code.tobytes(), radius=31)
    batch_ids, batch_dist = ix.search(code[None, :], radius=31)[0]
    assert ids.tolist() == batch_ids.tolist() and dist.tolist() == batch_dist.tolist()
    assert dist[0] == 0


def test_small_index_without_tables_is_exact() -> None:
    rng = np.random.default_rng(5)
    codes = clustered(rng, centres=20, per_centre=30, max_flips=35)
    ids = np.arange(600, dtype=np.int64)
    ix = PdqIndex()
    ix.add(ids, codes)
    for q in queries_for(rng, codes, 12):
        assert as_dict(ix.search_one(q, 31)) == brute_force(ids, codes, q, 31)


def test_upsert_replaces_and_remove_forgets() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.integers(0, 256, (2, 32), dtype=np.uint8)
    ix = PdqIndex()
    ix.add([1, 2], np.stack([a, a]))
    ix.add([1], b[None, :])  # id 1 now carries b
    assert len(ix) == 2
    assert as_dict(ix.search_one(a, 0)) == {2: 0}
    assert as_dict(ix.search_one(b, 0)) == {1: 0}
    ix.remove([2, 999])  # unknown ids are ignored
    assert len(ix) == 1
    assert as_dict(ix.search_one(a, 0)) == {}


def test_duplicate_ids_in_one_batch_keep_the_last_code() -> None:
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 256, (3, 32), dtype=np.uint8)
    ix = PdqIndex()
    ix.add([5, 5, 6], codes)
    assert len(ix) == 2
    assert as_dict(ix.search_one(codes[1], 0)) == {5: 0}
    assert as_dict(ix.search_one(codes[0], 0)) == {}


def test_updates_after_merges_stay_exact() -> None:
    """Many small writes: background merges into the tables, tombstones, upserts of merged rows."""
    rng = np.random.default_rng(8)
    model: dict[int, np.ndarray] = {}
    ix = PdqIndex(delta_limit=2_000)
    base = clustered(rng, centres=400, per_centre=100, max_flips=30)
    ix.add(np.arange(40_000), base)  # a bulk load builds tables at once
    model.update(enumerate(base))
    for step in range(30):
        new_ids = rng.integers(0, 60_000, 700)
        new_codes = mutate_many(rng, base[rng.integers(0, 40_000, 700)], rng.integers(0, 20, 700))
        ix.add(new_ids, new_codes)
        model.update(zip(new_ids.tolist(), new_codes, strict=True))
        gone = rng.integers(0, 60_000, 300)
        ix.remove(gone)
        for g in gone.tolist():
            model.pop(g, None)
        if step % 10 == 9:
            ix.wait_merged()
    ix.wait_merged()
    assert len(ix) == len(model)
    ids = np.fromiter(model, np.int64)
    codes = np.stack(list(model.values()))
    for q in queries_for(rng, codes, 20):
        assert as_dict(ix.search_one(q, 31)) == brute_force(ids, codes, q, 31)


def test_adds_and_removes_while_other_threads_search() -> None:
    rng = np.random.default_rng(9)
    stable = rng.integers(0, 256, (40_000, 32), dtype=np.uint8)
    ix = PdqIndex(delta_limit=1_500)
    ix.add(np.arange(40_000), stable)
    stop = threading.Event()
    failures: list[str] = []
    searches = [0]

    def reader(seed: int) -> None:
        r = np.random.default_rng(seed)
        while not stop.is_set():
            pick = r.integers(0, 40_000, 16)
            for i, match in zip(pick.tolist(), ix.search(stable[pick], radius=0), strict=True):
                if i not in match[0].tolist():
                    failures.append(f"stable id {i} missing during writes")
            searches[0] += 1

    readers = [threading.Thread(target=reader, args=(s,)) for s in range(2)]
    for t in readers:
        t.start()
    worst = 0.0
    try:
        live: dict[int, np.ndarray] = {}
        for step in range(60):
            ids = np.arange(100_000 + step * 100, 100_000 + step * 100 + 100)
            codes = rng.integers(0, 256, (100, 32), dtype=np.uint8)
            start = time.perf_counter()
            ix.add(ids, codes)
            # Matchable as soon as add returns: no waiting for a merge.
            found = ix.search(codes[:3], radius=0)
            worst = max(worst, time.perf_counter() - start)
            for i, match in zip(ids[:3].tolist(), found, strict=True):
                assert i in match[0].tolist()
            live.update(zip(ids.tolist(), codes, strict=True))
            victims = rng.choice(list(live), 40, replace=False)
            ix.remove(victims)
            for v in victims.tolist():
                del live[v]
            assert ix.search(np.stack([codes[0]]), radius=0)[0][0].tolist() in ([], [ids[0]])
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not failures, failures[:3]
    assert searches[0] > 0
    assert worst < 1.0
    ix.wait_merged()
    assert len(ix) == 40_000 + len(live)
    for i, code in list(live.items())[:50]:
        assert i in ix.search_one(code, 0)[0].tolist()


def test_save_and_load_round_trip(tmp_path: Path, clustered_index) -> None:
    ix, ids, codes = clustered_index
    path = tmp_path / "pdq.hhx"
    ix.save(path)
    rng = np.random.default_rng(10)
    queries = queries_for(rng, codes, 20)
    expected = [as_dict(m) for m in ix.search(queries, 31)]
    for mmap in (True, False):
        again = PdqIndex.load(path, mmap=mmap)
        assert len(again) == len(ix)
        assert [as_dict(m) for m in again.search(queries, 31)] == expected
    # A loaded (memory-mapped) index still takes writes, and the file is left as it was.
    again = PdqIndex.load(path)
    again.remove(ids[:100])
    again.add([-1], codes[:1])
    assert as_dict(again.search_one(codes[0], 0)) == {-1: 0}
    assert as_dict(PdqIndex.load(path).search_one(codes[0], 0)) == {int(ids[0]): 0}


def test_saving_pending_changes_and_tombstones(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    codes = rng.integers(0, 256, (50, 32), dtype=np.uint8)
    ix = PdqIndex()
    ix.add(np.arange(50), codes)
    ix.remove([0, 1])
    ix.save(tmp_path / "small.hhx")
    again = PdqIndex.load(tmp_path / "small.hhx")
    assert len(again) == 48
    assert as_dict(again.search_one(codes[0], 0)) == {}
    assert as_dict(again.search_one(codes[2], 0)) == {2: 0}


def test_unreadable_files_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(IndexFileError, match="cannot read"):
        PdqIndex.load(tmp_path / "missing.hhx")
    junk = tmp_path / "junk.hhx"
    junk.write_bytes(b"this is not an index file at all")
    with pytest.raises(IndexFileError, match="not a"):
        PdqIndex.load(junk)
    ix = PdqIndex()
    ix.add(np.arange(3), np.zeros((3, 32), np.uint8))
    good = tmp_path / "good.hhx"
    ix.save(good)
    data = good.read_bytes()
    (tmp_path / "short.hhx").write_bytes(data[: len(data) - 20])
    with pytest.raises(IndexFileError, match="truncated"):
        PdqIndex.load(tmp_path / "short.hhx")
    (tmp_path / "v9.hhx").write_bytes(data[:8] + (9).to_bytes(4, "little") + data[12:])
    with pytest.raises(IndexFileError, match="version 9"):
        PdqIndex.load(tmp_path / "v9.hhx")


@pytest.mark.parametrize(
    ("ids", "codes", "message"),
    [
        ([1, 2], np.zeros((2, 31), np.uint8), r"shape \(n, 32\)"),
        ([1], np.zeros((2, 32), np.uint8), "must pair up"),
        ([1.5], np.zeros((1, 32), np.uint8), "integers"),
        ([1], np.full((1, 32), 300), "0-255"),
    ],
)
def test_bad_input_is_refused_with_a_message(ids, codes, message: str) -> None:
    with pytest.raises(IndexInputError, match=message):
        PdqIndex().add(ids, codes)


@pytest.mark.parametrize("radius", [-1, 257, True, 3.0])
def test_bad_radius_is_refused(radius) -> None:
    with pytest.raises(IndexInputError, match="radius"):
        PdqIndex().search(np.zeros((1, 32), np.uint8), radius=radius)


def test_empty_index_and_empty_batches() -> None:
    ix = PdqIndex()
    assert len(ix) == 0
    assert as_dict(ix.search_one(np.zeros(32, np.uint8))) == {}
    assert ix.search(np.empty((0, 32), np.uint8)) == []
    ix.add([], np.empty((0, 32), np.uint8))
    ix.remove([])
    assert len(ix) == 0


def test_a_failed_merge_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """If building the merged tables fails (say, out of memory), every code stays searchable."""
    from hashhub.index import _pdq_segment

    rng = np.random.default_rng(12)
    codes = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    ix = PdqIndex(delta_limit=10_000)
    ix.add(np.arange(200), codes[:200])
    ix.add(np.arange(200, 300), codes[200:])  # waits in the delta
    ix.remove([0, 250])
    real_build = _pdq_segment.PdqSegment.build.__func__

    def failing_build(cls, ids, codes, *, tables=None):  # type: ignore[no-untyped-def]
        if tables is None:
            raise MemoryError("simulated")
        return real_build(cls, ids, codes, tables=tables)

    monkeypatch.setattr(_pdq_segment.PdqSegment, "build", classmethod(failing_build))
    with pytest.raises(MemoryError):
        ix.compact()
    monkeypatch.undo()
    assert len(ix) == 298
    for i in (1, 199, 201, 299):
        assert as_dict(ix.search_one(codes[i], 0)) == {i: 0}
    assert as_dict(ix.search_one(codes[250], 0)) == {}
    ix.compact()
    assert len(ix) == 298 and as_dict(ix.search_one(codes[201], 0)) == {201: 0}
