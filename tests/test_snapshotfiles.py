"""Snapshot folders (hashhub.snapshotfiles), shared by the hub's saved pool and the agent's saved
matcher: a save is all or nothing, the current snapshot is always a complete one, damaged or foreign
snapshots are refused with a reason, and old or abandoned folders do not pile up."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hashhub import snapshotfiles
from hashhub.snapshotfiles import SnapshotError, current, position_of, read_manifest, verify_files


def _save(directory: Path, position: int, values: np.ndarray, **kw) -> Path:
    def write_files(folder: Path) -> None:
        snapshotfiles.save_array(folder / "values.npy", values)
        (folder / "notes.json").write_bytes(b'{"n": %d}' % position)

    return snapshotfiles.write_snapshot(directory, position, write_files, {"format": 7, "at": position}, **kw)


@pytest.mark.parametrize("checksum", ["sha256", "crc32"])
def test_a_saved_snapshot_is_current_verified_and_maps_back(tmp_path: Path, checksum: str) -> None:
    values = np.arange(1000, dtype=np.int64)
    snap = _save(tmp_path, 42, values, checksum=checksum)
    assert current(tmp_path) == snap and position_of(snap) == 42
    manifest = read_manifest(snap, expect={"format": 7})
    assert manifest["at"] == 42 and sorted(manifest["files"]) == ["notes.json", "values.npy"]
    assert all(checksum in spec for spec in manifest["files"].values())
    verify_files(snap, manifest)
    mapped = snapshotfiles.map_array(snap / "values.npy")
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    assert np.array_equal(mapped, values)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


def test_an_empty_array_loads_too(tmp_path: Path) -> None:
    snap = _save(tmp_path, 1, np.zeros(0, np.int32))
    assert snapshotfiles.map_array(snap / "values.npy").shape == (0,)


def test_a_save_that_fails_half_way_leaves_the_current_snapshot_alone(tmp_path: Path) -> None:
    first = _save(tmp_path, 1, np.arange(3))

    def fail(folder: Path) -> None:
        (folder / "part.bin").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        snapshotfiles.write_snapshot(tmp_path, 2, fail, {"format": 7})
    assert current(tmp_path) == first
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [first.name]


def test_saves_keep_the_current_and_the_previous_snapshot_and_clear_leftovers(tmp_path: Path) -> None:
    kept = [_save(tmp_path, n, np.arange(n)) for n in (1, 2, 3)]
    # Leftovers of savers that died: a half-written folder, and a complete folder renamed into
    # place (with a higher position) just before CURRENT was to point at it.
    abandoned = tmp_path / f".tmp-{2**22 + 1}-dead0001"  # no process has a pid above 2**22
    abandoned.mkdir()
    unpublished = tmp_path / "snap-000000000099-dead0002"
    unpublished.mkdir()
    # A live saver's folder (another process's pid) is left to it.
    live = tmp_path / f".tmp-{os.getppid()}-a11ve000"
    live.mkdir()
    newest = _save(tmp_path, 4, np.arange(4))
    assert current(tmp_path) == newest
    left = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert left == sorted([live.name, kept[-1].name, newest.name])


def test_no_snapshot_yet(tmp_path: Path) -> None:
    assert current(tmp_path) is None
    assert position_of(tmp_path / "something-else") == -1


def test_an_unfinished_damaged_or_foreign_manifest_is_refused_with_its_reason(tmp_path: Path) -> None:
    snap = _save(tmp_path, 5, np.arange(5))
    with pytest.raises(SnapshotError, match="format 7; this hashhub reads 8"):
        read_manifest(snap, expect={"format": 8})
    (snap / "manifest.json").write_bytes(b'{"format": 7, "fil')
    with pytest.raises(SnapshotError, match="damaged"):
        read_manifest(snap)
    (snap / "manifest.json").write_bytes(b"[1, 2]")
    with pytest.raises(SnapshotError, match="damaged"):
        read_manifest(snap)
    (snap / "manifest.json").unlink()
    with pytest.raises(SnapshotError, match="no manifest"):
        read_manifest(snap)


def test_a_damaged_truncated_or_missing_file_is_refused(tmp_path: Path) -> None:
    snap = _save(tmp_path, 5, np.arange(100))
    manifest = read_manifest(snap)
    target = snap / "values.npy"
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match=r"values\.npy is missing, truncated or damaged"):
        verify_files(snap, manifest)
    verify_files(snap, manifest, checksums=False)  # a size check alone does not see a flipped bit
    target.write_bytes(bytes(data[:-8]))
    with pytest.raises(SnapshotError, match=r"values\.npy"):
        verify_files(snap, manifest, checksums=False)
    target.unlink()
    with pytest.raises(SnapshotError, match=r"values\.npy"):
        verify_files(snap, manifest, checksums=False)


def test_one_saver_at_a_time(tmp_path: Path) -> None:
    with snapshotfiles.saver_lock(tmp_path / "pool", wait=False) as got:
        assert got
        with snapshotfiles.saver_lock(tmp_path / "pool", wait=False) as second:
            assert not second
    with snapshotfiles.saver_lock(tmp_path / "pool", wait=False) as again:
        assert again
