"""ExactIndex: exact membership for digests and opaque values, upserts, removals, merges and files."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest

from hashhub.index import ExactIndex, IndexFileError, IndexInputError


def md5(i: int) -> bytes:
    return hashlib.md5(str(i).encode()).digest()


def ids_of(results: list[np.ndarray]) -> list[list[int]]:
    for r in results:
        assert r.dtype == np.int64
    return [r.tolist() for r in results]


def test_finds_every_holder_of_a_value_and_nothing_else() -> None:
    ex = ExactIndex()
    ex.add([3, 1, 2], [md5(1), md5(1), md5(2)])
    assert len(ex) == 3
    assert ids_of(ex.search([md5(1), md5(2), md5(3)])) == [[1, 3], [2], []]


def test_values_of_any_length_compare_exactly() -> None:
    ex = ExactIndex()
    ex.add([1, 2, 3], [b"a", b"ab", b"opaque-vendor-hash:\x00\xff"])
    assert ids_of(ex.search([b"ab", b"a", b"abc", b"opaque-vendor-hash:\x00\xff"])) == [[2], [1], [], [3]]


def test_upsert_moves_an_id_and_remove_forgets_it() -> None:
    ex = ExactIndex()
    ex.add([1, 2], [md5(1), md5(1)])
    ex.add([1], [md5(9)])
    assert ids_of(ex.search([md5(1), md5(9)])) == [[2], [1]]
    ex.remove([2, 12345])
    assert len(ex) == 1
    assert ids_of(ex.search([md5(1)])) == [[]]
    ex.add([7, 7], [md5(5), md5(6)])  # the later value of a repeated id wins
    assert ids_of(ex.search([md5(5), md5(6)])) == [[], [7]]
    assert len(ex) == 2


def test_merged_and_recent_entries_answer_alike() -> None:
    rng = np.random.default_rng(1)
    ex = ExactIndex(delta_limit=500)
    model: dict[int, bytes] = {}
    for _ in range(12):
        ids = rng.integers(0, 3_000, 400)
        vals = [md5(int(v)) for v in rng.integers(0, 1_000, 400)]
        ex.add(ids, vals)
        model.update(zip(ids.tolist(), vals, strict=True))
        gone = rng.integers(0, 3_000, 100)
        ex.remove(gone)
        for g in gone.tolist():
            model.pop(g, None)
    assert len(ex) == len(model)
    probes = [md5(i) for i in range(1_000)]
    expected = [sorted(i for i, v in model.items() if v == p) for p in probes]
    assert ids_of(ex.search(probes)) == expected


def test_searches_see_stable_entries_while_a_writer_merges() -> None:
    ex = ExactIndex(delta_limit=300)
    ex.add(np.arange(1_000), [md5(i) for i in range(1_000)])
    stop = threading.Event()
    missing: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            for i, found in enumerate(ex.search([md5(i) for i in range(0, 1_000, 37)])):
                if found.tolist() != [i * 37]:
                    missing.append(i * 37)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for step in range(20):
            ex.add(np.arange(10_000 + step * 200, 10_200 + step * 200), [md5(-i - 1) for i in range(200)])
            ex.remove(np.arange(10_000 + step * 200, 10_100 + step * 200))
    finally:
        stop.set()
        t.join()
    assert not missing
    assert len(ex) == 1_000 + 20 * 100


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    ex = ExactIndex()
    ex.add([1, 2, 3], [md5(1), b"x", md5(1)])
    ex.remove([3])
    ex.save(tmp_path / "exact.hhx")
    for mmap in (True, False):
        again = ExactIndex.load(tmp_path / "exact.hhx", mmap=mmap)
        assert len(again) == 2
        assert ids_of(again.search([md5(1), b"x", b"y"])) == [[1], [2], []]
    again.add([4], [b"y"])
    again.remove([1])
    assert ids_of(again.search([md5(1), b"y"])) == [[], [4]]


def test_bad_input_and_files_are_refused_with_a_message(tmp_path: Path) -> None:
    ex = ExactIndex()
    with pytest.raises(IndexInputError, match=r"bytes\.fromhex"):
        ex.add([1], ["d41d8cd98f00b204e9800998ecf8427e"])
    with pytest.raises(IndexInputError, match="pair up"):
        ex.add([1, 2], [b"a"])
    with pytest.raises(IndexInputError, match="empty"):
        ex.search([b""])
    with pytest.raises(IndexInputError, match="sequence"):
        ex.search(b"abc")
    (tmp_path / "bad.hhx").write_bytes(b"HHIXPDQ1" + b"\x00" * 64)
    with pytest.raises(IndexFileError, match="not a"):
        ExactIndex.load(tmp_path / "bad.hhx")


def test_a_loaded_index_removes_and_merges_like_a_built_one(tmp_path: Path) -> None:
    ex = ExactIndex()
    ex.add(np.arange(1000, 0, -1), [md5(i % 300) for i in range(1000, 0, -1)])
    ex.save(tmp_path / "exact.hhx")
    again = ExactIndex.load(tmp_path / "exact.hhx", delta_limit=10)
    again.remove(np.arange(1, 1001, 7))  # through the saved id order
    again.add(np.arange(2000, 2200), [md5(i % 300) for i in range(2000, 2200)])  # past the limit (1000 // 8)
    again.add([2], [b"moved"])
    removed = set(range(1, 1001, 7)) - {2}
    expected = {i: md5(i % 300) for i in range(1, 1001) if i not in removed} | {2: b"moved"}
    expected |= {i: md5(i % 300) for i in range(2000, 2200)}
    assert len(again) == len(expected)
    for value in [md5(v) for v in (0, 1, 150, 299)] + [b"moved"]:
        (found,) = again.search([value])
        assert found.tolist() == sorted(i for i, v in expected.items() if v == value)


def test_digests_are_saved_compactly_and_large_ids_keep_64_bits(tmp_path: Path) -> None:
    ex = ExactIndex()
    ex.add(np.arange(1000), [md5(i) for i in range(1000)])
    ex.save(tmp_path / "small.hhx")
    # 8-byte key + 16-byte digest + three 4-byte id/row columns, no offsets: 36 bytes an entry (was 48)
    assert (tmp_path / "small.hhx").stat().st_size < 1000 * 36 + 4096
    big = ExactIndex()
    big.add([2**40, 5, 2**40 + 1], [md5(1), md5(1), b"opaque"])
    big.save(tmp_path / "big.hhx")
    again = ExactIndex.load(tmp_path / "big.hhx")
    assert ids_of(again.search([md5(1), b"opaque"])) == [[5, 2**40], [2**40 + 1]]
    again.remove([2**40, 2**40 + 7])
    assert ids_of(again.search([md5(1)])) == [[5]]
    assert len(again) == 2


def _write_v1(path: Path, ids: list[int], values: list[bytes]) -> None:
    """A file in the first layout (HHIXEXA1: offsets for every value, int64 ids and rows)."""
    from hashhub.index import _fileformat

    keys = np.frombuffer(b"".join(hashlib.blake2b(v, digest_size=8).digest() for v in values), np.uint64)
    order = np.argsort(keys, kind="stable")
    ordered = [values[i] for i in order]
    offsets = np.zeros(len(values) + 1, np.int64)
    np.cumsum([len(v) for v in ordered], out=offsets[1:])
    id_arr = np.asarray(ids, np.int64)[order]
    arrays = {
        "keys": keys[order],
        "ids": id_arr,
        "offsets": offsets,
        "blob": np.frombuffer(b"".join(ordered), np.uint8),
        "by_id": np.argsort(id_arr, kind="stable"),
    }
    _fileformat.write(path, b"HHIXEXA1", {"count": len(ids)}, arrays)


@pytest.mark.parametrize("values", [[md5(i) for i in range(50)], [b"x" * (i + 1) for i in range(50)]])
def test_files_in_the_first_layout_still_load_and_save_compactly(tmp_path: Path, values: list[bytes]) -> None:
    _write_v1(tmp_path / "old.hhx", list(range(100, 150)), values)
    old = ExactIndex.load(tmp_path / "old.hhx")
    assert len(old) == 50
    assert ids_of(old.search([values[3], b"absent"])) == [[103], []]
    old.remove([104])
    old.add([200], [values[4]])
    old.save(tmp_path / "new.hhx")
    assert (tmp_path / "new.hhx").read_bytes()[:8] == b"HHIXEXA2"
    again = ExactIndex.load(tmp_path / "new.hhx")
    assert ids_of(again.search([values[4], values[5]])) == [[200], [105]]
    assert len(again) == 50
    assert (tmp_path / "new.hhx").stat().st_size < (tmp_path / "old.hhx").stat().st_size


def test_a_loaded_index_keeps_its_file_mapped_until_the_delta_outgrows_an_eighth_of_it(
    tmp_path: Path,
) -> None:
    ex = ExactIndex()
    ex.add(np.arange(8_000), [md5(i) for i in range(8_000)])
    ex.save(tmp_path / "exact.hhx")
    again = ExactIndex.load(tmp_path / "exact.hhx", delta_limit=10)
    mapped = again._main
    again.add(np.arange(10_000, 10_999), [md5(i) for i in range(10_000, 10_999)])
    assert again._main is mapped  # a merge would have copied all 8,000 entries into private memory
    again.add([20_000], [md5(20_000)])  # the 1,000th: an eighth of the file
    assert again._main is not mapped
    assert ids_of(again.search([md5(5), md5(10_500), md5(20_000)])) == [[5], [10_500], [20_000]]
    assert len(again) == 9_000
